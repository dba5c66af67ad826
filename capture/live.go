package capture

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
)

// LiveOptions configure a live capture.
type LiveOptions struct {
	Interfaces []string // one or more; together they are one input
	Filter     string   // BPF, compiled by libpcap and attached in the kernel
	SnapLen    int      // bytes kept of each packet; 0: 262144
	BufferSize int      // kernel ring per interface in bytes; 0: 8 MiB
	Promisc    bool
	Immediate  bool // deliver each packet at once (else within ReadTimeout)
	// ReadTimeout is how long libpcap may hold packets before handing them
	// over (and how soon a stop is noticed); 0: 100 ms.
	ReadTimeout time.Duration
	// Queue is the number of frames between the readers and the consumer
	// (0: 64 MiB of snap-length frames, 256 to 8192); when it is full the
	// readers wait and the kernel drops (and counts).
	Queue int
}

// LiveIface is one opened interface (Frame.File is its index).
type LiveIface struct {
	Name     string
	LinkType layers.LinkType
	SnapLen  int
}

// packetSource is one capture socket: a libpcap handle, or one AF_PACKET
// socket of a fanout group.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)  // a copy
	timeout(error) bool                                     // a read timeout: read again
	counters() (recv, kernDrops, ifDrops uint32, err error) // wrapping 32-bit counters
	Close()
}

// liveHandle is a socket, its queue and its counters.
type liveHandle struct {
	iface, queue int
	src          packetSource

	packets, bytes atomic.Uint64
	mu             sync.Mutex
	kern           counter64 // dropped by the kernel: no room in the buffer
	ifd            counter64 // dropped by the interface or its driver
	recv           counter64
	statErr        error
}

// Live reads interfaces as one input. Each socket has a goroutine that
// feeds its queue in arrival order: with libpcap every interface feeds
// the one queue; with AF_PACKET fanout (Linux) queue i gets the flows the
// kernel's symmetric hash gives to socket i of every interface. Frames are
// copies (owned by the receiver); their Number is 0 (the consumer numbers
// them) and File is the interface's index.
type Live struct {
	Ifaces  []*LiveIface
	handles []*liveHandle
	queues  []chan Frame
	done    chan struct{}
	wg      sync.WaitGroup
	stateMu sync.Mutex
	started bool
	stopped bool
	errMu   sync.Mutex
	err     error
}

func newLive(opt *LiveOptions, queues int) *Live {
	if opt.SnapLen <= 0 {
		opt.SnapLen = 262144
	}
	if opt.BufferSize <= 0 {
		opt.BufferSize = 8 << 20
	}
	if opt.ReadTimeout <= 0 {
		opt.ReadTimeout = 100 * time.Millisecond
	}
	if opt.Queue <= 0 {
		// About 64 MiB of full-size frames per queue, bounded both ways.
		opt.Queue = min(8192, max(256, (64<<20)/opt.SnapLen))
	}
	l := &Live{done: make(chan struct{})}
	for i := 0; i < queues; i++ {
		l.queues = append(l.queues, make(chan Frame, opt.Queue))
	}
	return l
}

// OpenLive opens and activates every interface with libpcap and sets the
// filter; no packet is read before Start.
func OpenLive(opt LiveOptions) (*Live, error) {
	if len(opt.Interfaces) == 0 {
		return nil, errors.New("capture: no interface")
	}
	l := newLive(&opt, 1)
	for i, name := range opt.Interfaces {
		h, err := activate(name, opt)
		if err != nil {
			l.closeHandles()
			return nil, err
		}
		l.Ifaces = append(l.Ifaces, &LiveIface{Name: name, LinkType: h.LinkType(), SnapLen: opt.SnapLen})
		l.handles = append(l.handles, &liveHandle{iface: i, src: pcapSource{h}})
	}
	return l, nil
}

type pcapSource struct{ *pcap.Handle }

func (p pcapSource) timeout(err error) bool { return errors.Is(err, pcap.NextErrorTimeoutExpired) }

func (p pcapSource) counters() (uint32, uint32, uint32, error) {
	st, err := p.Stats()
	if err != nil {
		return 0, 0, 0, err
	}
	return uint32(st.PacketsReceived), uint32(st.PacketsDropped), uint32(st.PacketsIfDropped), nil
}

func activate(name string, opt LiveOptions) (*pcap.Handle, error) {
	in, err := pcap.NewInactiveHandle(name)
	if err != nil {
		return nil, fmt.Errorf("capture: interface %s: %w", name, err)
	}
	defer in.CleanUp()
	for _, set := range []func() error{
		func() error { return in.SetSnapLen(opt.SnapLen) },
		func() error { return in.SetBufferSize(opt.BufferSize) },
		func() error { return in.SetPromisc(opt.Promisc) },
		func() error { return in.SetTimeout(opt.ReadTimeout) },
		func() error { return in.SetImmediateMode(opt.Immediate) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("capture: interface %s: %w", name, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, fmt.Errorf("capture: interface %s: %w%s", name, err, permHint(err))
	}
	if opt.Filter != "" {
		if err := h.SetBPFFilter(opt.Filter); err != nil {
			h.Close()
			return nil, fmt.Errorf("capture: interface %s: filter %q: %w", name, opt.Filter, err)
		}
	}
	return h, nil
}

func permHint(err error) string {
	if s := strings.ToLower(err.Error()); strings.Contains(s, "permission") || strings.Contains(s, "not permitted") {
		return " (capturing needs root, or CAP_NET_RAW and CAP_NET_ADMIN: see the README)"
	}
	return ""
}

// Start starts one reader per socket (after Stop, it only closes the
// queues).
func (l *Live) Start() {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.stopped {
		for _, q := range l.queues {
			close(q)
		}
		return
	}
	l.started = true
	for _, h := range l.handles {
		l.wg.Add(1)
		go l.read(h)
	}
	go func() {
		l.wg.Wait()
		for _, q := range l.queues {
			close(q)
		}
	}()
}

// Queues are the frame queues (one with libpcap, one per fanout worker
// with AF_PACKET); each is closed when every reader has stopped (after
// Stop, or a read error on each: see Err).
func (l *Live) Queues() []<-chan Frame {
	out := make([]<-chan Frame, len(l.queues))
	for i, q := range l.queues {
		out[i] = q
	}
	return out
}

func (l *Live) read(h *liveHandle) {
	defer l.wg.Done()
	defer h.src.Close()
	defer h.refresh() // the final counters, before the socket closes
	q := l.queues[h.queue]
	name := l.Ifaces[h.iface].Name
	lt := l.Ifaces[h.iface].LinkType
	last := time.Now()
	for {
		select {
		case <-l.done:
			return
		default:
		}
		data, ci, err := h.src.ReadPacketData()
		if now := time.Now(); now.Sub(last) >= 500*time.Millisecond {
			h.refresh()
			last = now
		}
		switch {
		case err == nil:
		case h.src.timeout(err):
			continue
		case errors.Is(err, pcap.NextErrorNoMorePackets):
			return
		default:
			l.fail(fmt.Errorf("capture: interface %s: %w", name, err))
			return
		}
		h.packets.Add(1)
		h.bytes.Add(uint64(ci.Length))
		ci.InterfaceIndex = h.iface
		select {
		case q <- Frame{Data: data, CI: ci, LinkType: lt, File: h.iface}:
		case <-l.done:
			return
		}
	}
}

func (l *Live) fail(err error) {
	l.errMu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.errMu.Unlock()
}

// Err is the first read error of any interface (nil after a clean Stop).
func (l *Live) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// Stop stops the readers (within the read timeout) and closes the sockets;
// the frames already queued stay readable from the queues, which are then
// closed. Without Start it only closes the sockets. Any goroutine may call
// it, more than once.
func (l *Live) Stop() {
	l.stateMu.Lock()
	if !l.stopped {
		l.stopped = true
		close(l.done)
		if !l.started {
			l.closeHandles()
		}
	}
	l.stateMu.Unlock()
	l.wg.Wait()
}

func (l *Live) closeHandles() {
	for _, h := range l.handles {
		h.src.Close()
	}
}

// refresh reads the socket's counters on its reader's goroutine (between
// two reads) and folds them into 64-bit totals.
func (h *liveHandle) refresh() {
	recv, kern, ifd, err := h.src.counters()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.statErr = err
		return
	}
	h.recv.update(recv)
	h.kern.update(kern)
	h.ifd.update(ifd)
}

// LiveStats are the counters of one interface, or of all.
type LiveStats struct {
	Packets     uint64 `json:"packets"`      // frames handed over
	Bytes       uint64 `json:"bytes"`        // their length on the wire
	Received    uint64 `json:"pcap_recv"`    // libpcap's count of packets that passed the filter
	KernelDrops uint64 `json:"kernel_drops"` // dropped by the kernel: no room in the buffer
	IfDrops     uint64 `json:"if_drops"`     // dropped by the interface or its driver
}

// Stats sums the counters of every socket (the kernel's are refreshed
// twice a second and when a reader stops).
func (l *Live) Stats() LiveStats {
	var s LiveStats
	for _, h := range l.handles {
		s.Packets += h.packets.Load()
		s.Bytes += h.bytes.Load()
		h.mu.Lock()
		s.Received += h.recv.total
		s.KernelDrops += h.kern.total
		s.IfDrops += h.ifd.total
		h.mu.Unlock()
	}
	return s
}

// counter64 accumulates a 32-bit counter that wraps (libpcap's u_int) into
// 64 bits; the counter is read often enough that it never wraps twice
// between two reads.
type counter64 struct {
	last  uint32
	total uint64
	seen  bool
}

func (c *counter64) update(v uint32) {
	if !c.seen {
		c.seen, c.last, c.total = true, v, uint64(v)
		return
	}
	c.total += uint64(v - c.last) // modular: right across a wrap
	c.last = v
}
