package capture

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// Queue is the number of frames between the readers and the consumer;
	// when it is full the readers wait and the kernel drops (and counts).
	Queue int
}

// LiveIface is one opened interface.
type LiveIface struct {
	Name     string
	LinkType layers.LinkType
	SnapLen  int
	h        *pcap.Handle

	packets, bytes atomic.Uint64
	mu             sync.Mutex
	kern           counter64 // pcap ps_drop: dropped by the kernel (buffer full)
	ifd            counter64 // pcap ps_ifdrop: dropped by the interface/driver
	recv           counter64 // pcap ps_recv
	statErr        error
}

// Live reads several interfaces as one input: one goroutine per handle
// feeds one channel, in arrival order. Frames are copies (owned by the
// receiver); their Number is 0 (the consumer numbers them as it takes them)
// and File is the interface's index.
type Live struct {
	Ifaces  []*LiveIface
	frames  chan Frame
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	started bool
	errMu   sync.Mutex
	err     error
}

// OpenLive opens and activates every interface and sets the filter; no
// packet is read before Start.
func OpenLive(opt LiveOptions) (*Live, error) {
	if len(opt.Interfaces) == 0 {
		return nil, errors.New("capture: no interface")
	}
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
		opt.Queue = 4096
	}
	l := &Live{frames: make(chan Frame, opt.Queue), done: make(chan struct{})}
	for _, name := range opt.Interfaces {
		h, err := activate(name, opt)
		if err != nil {
			l.closeHandles()
			return nil, err
		}
		l.Ifaces = append(l.Ifaces, &LiveIface{Name: name, LinkType: h.LinkType(), SnapLen: opt.SnapLen, h: h})
	}
	return l, nil
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
		hint := ""
		if strings.Contains(strings.ToLower(err.Error()), "permission") {
			hint = " (capturing needs root, or CAP_NET_RAW and CAP_NET_ADMIN: see the README)"
		}
		return nil, fmt.Errorf("capture: interface %s: %w%s", name, err, hint)
	}
	if opt.Filter != "" {
		if err := h.SetBPFFilter(opt.Filter); err != nil {
			h.Close()
			return nil, fmt.Errorf("capture: interface %s: filter %q: %w", name, opt.Filter, err)
		}
	}
	return h, nil
}

// Start starts one reader per interface.
func (l *Live) Start() {
	l.started = true
	for i, li := range l.Ifaces {
		l.wg.Add(1)
		go l.read(i, li)
	}
	go func() {
		l.wg.Wait()
		close(l.frames)
	}()
}

// Frames delivers the frames of every interface in arrival order; it is
// closed when every reader has stopped (after Stop, or a read error on
// each: see Err).
func (l *Live) Frames() <-chan Frame { return l.frames }

func (l *Live) read(idx int, li *LiveIface) {
	defer l.wg.Done()
	defer li.h.Close()
	defer li.refresh() // the final counters, before the handle closes
	last := time.Now()
	for {
		select {
		case <-l.done:
			return
		default:
		}
		data, ci, err := li.h.ReadPacketData() // a copy
		if now := time.Now(); now.Sub(last) >= 500*time.Millisecond {
			li.refresh()
			last = now
		}
		switch {
		case err == nil:
		case errors.Is(err, pcap.NextErrorTimeoutExpired):
			continue
		case errors.Is(err, pcap.NextErrorNoMorePackets):
			return
		default:
			l.fail(fmt.Errorf("capture: interface %s: %w", li.Name, err))
			return
		}
		li.packets.Add(1)
		li.bytes.Add(uint64(ci.Length))
		ci.InterfaceIndex = idx
		select {
		case l.frames <- Frame{Data: data, CI: ci, LinkType: li.LinkType, File: idx}:
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

// Stop stops the readers (within the read timeout) and closes the handles;
// the frames already queued stay readable from Frames, which is then
// closed. Without Start it only closes the handles.
func (l *Live) Stop() {
	l.once.Do(func() {
		close(l.done)
		if !l.started {
			l.closeHandles()
		}
	})
	l.wg.Wait()
}

func (l *Live) closeHandles() {
	for _, li := range l.Ifaces {
		li.h.Close()
	}
}

// refresh reads libpcap's counters on the reader's goroutine (between two
// reads: the handle is not shared) and folds them into 64-bit totals.
func (li *LiveIface) refresh() {
	st, err := li.h.Stats()
	li.mu.Lock()
	defer li.mu.Unlock()
	if err != nil {
		li.statErr = err
		return
	}
	li.recv.update(uint32(st.PacketsReceived))
	li.kern.update(uint32(st.PacketsDropped))
	li.ifd.update(uint32(st.PacketsIfDropped))
}

// LiveStats are the counters of one interface, or of all.
type LiveStats struct {
	Packets     uint64 `json:"packets"`      // frames handed over
	Bytes       uint64 `json:"bytes"`        // their length on the wire
	Received    uint64 `json:"pcap_recv"`    // libpcap's count of packets that passed the filter
	KernelDrops uint64 `json:"kernel_drops"` // dropped by the kernel: no room in the buffer
	IfDrops     uint64 `json:"if_drops"`     // dropped by the interface or its driver
}

// Stats sums the counters of every interface (libpcap's are refreshed
// twice a second and when a reader stops).
func (l *Live) Stats() LiveStats {
	var s LiveStats
	for _, li := range l.Ifaces {
		s.Packets += li.packets.Load()
		s.Bytes += li.bytes.Load()
		li.mu.Lock()
		s.Received += li.recv.total
		s.KernelDrops += li.kern.total
		s.IfDrops += li.ifd.total
		li.mu.Unlock()
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
