package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// AFPacketAvailable says whether OpenAFPacket works on this system.
const AFPacketAvailable = true

// OpenAFPacket opens workers AF_PACKET TPACKET_V3 sockets on every
// interface, joined per interface in a fanout group by flow hash: the
// kernel's symmetric hash sends both directions of a flow to the same
// socket index, so queue i holds whole flows (and the copies a SPAN port
// makes of a packet, which hash alike) from every interface. The BPF
// filter is compiled by libpcap for Ethernet and attached to every socket.
// Only Ethernet-framed interfaces are supported (VLAN tags the kernel
// strips are put back). BufferSize is the ring of each socket.
func OpenAFPacket(opt LiveOptions, workers int) (*Live, error) {
	if len(opt.Interfaces) == 0 {
		return nil, errors.New("capture: no interface")
	}
	workers = max(1, workers)
	l := newLive(&opt, workers)
	var prog []bpf.RawInstruction
	if opt.Filter != "" {
		ins, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, opt.SnapLen, opt.Filter)
		if err != nil {
			return nil, fmt.Errorf("capture: filter %q: %w", opt.Filter, err)
		}
		for _, i := range ins {
			prog = append(prog, bpf.RawInstruction{Op: i.Code, Jt: i.Jt, Jf: i.Jf, K: i.K})
		}
	}
	const block = 1 << 20
	blocks := max(2, opt.BufferSize/block)
	tov := opt.ReadTimeout
	if opt.Immediate {
		tov = time.Millisecond
	}
	for i, name := range opt.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			l.closeHandles()
			return nil, fmt.Errorf("capture: interface %s: %w", name, err)
		}
		if len(ifc.HardwareAddr) != 6 && ifc.Flags&net.FlagLoopback == 0 {
			l.closeHandles()
			return nil, fmt.Errorf("capture: interface %s: AF_PACKET capture takes Ethernet interfaces; use libpcap (without --afpacket)", name)
		}
		l.Ifaces = append(l.Ifaces, &LiveIface{Name: name, LinkType: layers.LinkTypeEthernet, SnapLen: opt.SnapLen})
		group := uint16(os.Getpid()*31 + ifc.Index)
		ifd := newIfDrops(name)
		for w := 0; w < workers; w++ {
			tp, err := afpacket.NewTPacket(afpacket.OptInterface(name), afpacket.TPacketVersion3, afpacket.OptBlockSize(block),
				afpacket.OptFrameSize(1<<16), afpacket.OptNumBlocks(blocks), afpacket.OptBlockTimeout(tov),
				afpacket.OptPollTimeout(opt.ReadTimeout), afpacket.OptAddVLANHeader(true))
			if err == nil && prog != nil {
				err = tp.SetBPF(prog)
			}
			if err == nil && opt.Promisc {
				err = tp.SetPromiscuous(true)
			}
			if err == nil && workers > 1 {
				err = tp.SetFanout(afpacket.FanoutHash, group)
			}
			if err != nil {
				if tp != nil {
					tp.Close()
				}
				l.closeHandles()
				return nil, fmt.Errorf("capture: interface %s: AF_PACKET: %w%s", name, err, permHint(err))
			}
			src := &afSource{tp: tp}
			if w == 0 {
				src.ifd = ifd // the interface's drops, counted once
			}
			l.handles = append(l.handles, &liveHandle{iface: i, queue: w, src: src})
		}
	}
	return l, nil
}

type afSource struct {
	tp  *afpacket.TPacket
	ifd *ifDrops
}

func (a *afSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return a.tp.ReadPacketData()
}

func (a *afSource) timeout(err error) bool {
	return errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, afpacket.ErrPoll)
}

func (a *afSource) counters() (uint32, uint32, uint32, error) {
	_, v3, err := a.tp.SocketStats() // the kernel resets them; afpacket adds them up
	if err != nil {
		return 0, 0, 0, err
	}
	var ifd uint32
	if a.ifd != nil {
		ifd = a.ifd.since()
	}
	return uint32(v3.Packets()), uint32(v3.Drops()), ifd, nil
}

func (a *afSource) Close() { a.tp.Close() }

// ifDrops reads the interface's rx_dropped (sysfs) relative to its value
// at open, as libpcap does for ps_ifdrop.
type ifDrops struct {
	path string
	base uint64
}

func newIfDrops(name string) *ifDrops {
	d := &ifDrops{path: "/sys/class/net/" + name + "/statistics/rx_dropped"}
	d.base, _ = d.read()
	return d
}

func (d *ifDrops) read() (uint64, error) {
	b, err := os.ReadFile(d.path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func (d *ifDrops) since() uint32 {
	v, err := d.read()
	if err != nil || v < d.base {
		return 0
	}
	return uint32(v - d.base)
}
