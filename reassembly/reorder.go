package reassembly

import (
	"time"

	"github.com/smtpcap/smtpcap/smtpstate"
)

// Our own reorder buffer, one per direction of a connection. gopacket's
// assembler can neither flush nor close one connection (only all of them),
// and it keeps a connection alive until both halves are closed, so it can
// follow neither our session table nor per-connection capture loss. This
// is the missing per-connection API: in-order bytes go straight through
// (no copy), bytes ahead of a hole are copied and queued, and a hole is
// given up as a gap when the peer acknowledges past it, when the queue has
// waited reorderWait of capture time, when a cap is reached, or when the
// session ends.

// reorderWait is how long out-of-order bytes wait for a hole to fill.
const reorderWait = 3 * time.Second

// smallBuf is the size of the recycled copies of queued segments.
const smallBuf = 2048

// qseg is a queued (out-of-order) segment.
type qseg struct {
	seq   uint32
	data  []byte
	frame uint64
	ts    time.Time
	fin   bool
}

// half is one direction's stream position and queue.
type half struct {
	started bool   // a first segment fixed the stream start
	done    bool   // a FIN or RST was reached in order: no more bytes
	next    uint32 // next sequence number to deliver
	q       []qseg // out of order, sorted by seq
	qbytes  int
	// the last bytes delivered, to compare with a later copy of them
	tail      [tailSize]byte
	tailN     int
	tailFrame uint64
}

// tailSize is how many delivered bytes per direction are kept to tell a
// retransmission from a conflicting copy (tcp_overlap_conflict).
const tailSize = 128

// put delivers in-order bytes and keeps their tail.
func (h *half) put(out *session, side int, b []byte, frame uint64, ts time.Time) {
	out.deliver(side, b, frame, ts)
	if len(b) >= tailSize {
		copy(h.tail[:], b[len(b)-tailSize:])
		h.tailN = tailSize
	} else {
		keep := min(h.tailN, tailSize-len(b))
		copy(h.tail[:], h.tail[h.tailN-keep:h.tailN])
		copy(h.tail[keep:], b)
		h.tailN = keep + len(b)
	}
	h.tailFrame = frame
}

// compare checks bytes at seq that the stream already has (below next)
// against the kept tail; a difference is an overlap conflict.
func (h *half) compare(out *session, side int, seq uint32, b []byte, frame uint64) {
	start := h.next - uint32(h.tailN) // first sequence number in the tail
	for i := range b {
		q := seq + uint32(i)
		if !seqLT(q, h.next) {
			return
		}
		if seqLT(q, start) {
			continue
		}
		if h.tail[int(q-start)] != b[i] {
			out.conn.Overlap(out.dirOf(side), q, h.tailFrame, frame)
			return
		}
	}
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// feed runs one segment through its half (side 0: sent by the key's
// endpoint a); bytes go to the session's dialogue.
func (w *worker) feed(out *session, side int, sg *segment) {
	h := &out.h[side]
	seq, data := sg.seq, sg.payload
	syn, fin, rst := sg.flags.Has(smtpstate.FlagSYN), sg.flags.Has(smtpstate.FlagFIN), sg.flags.Has(smtpstate.FlagRST)
	if !h.started {
		h.started, h.next = true, seq
		if syn {
			h.next++
		}
	} else if syn {
		return // a SYN on a synchronized half is not stream data (RFC 5961)
	}
	if syn {
		seq++
	}
	if h.done {
		return
	}
	if rst {
		// Only a RST exactly at the next sequence number ends the stream;
		// the receiver drops any other one.
		if seq == h.next {
			h.done = true
			w.dropQueue(h)
		}
		return
	}
	end := seq + uint32(len(data))
	if seqLT(h.next, seq) {
		w.enqueue(out, side, seq, data, sg.frame, sg.ts, fin)
		return
	}
	if len(data) > 0 && seqLT(seq, h.next) {
		h.compare(out, side, seq, data, sg.frame)
	}
	if seqLT(h.next, end) {
		data = data[h.next-seq:]
		h.next = end
		h.put(out, side, data, sg.frame, sg.ts)
	}
	if fin && !seqLT(end, h.next) {
		h.done, h.next = true, end+1
		w.dropQueue(h)
		return
	}
	if len(h.q) > 0 {
		w.drain(h, side, out)
	}
}

// enqueue copies an out-of-order segment into the queue (sorted by seq;
// almost always appended at the end).
func (w *worker) enqueue(out *session, side int, seq uint32, data []byte, frame uint64, ts time.Time, fin bool) {
	h := &out.h[side]
	if len(data) == 0 && !fin {
		return
	}
	var buf []byte
	if len(data) <= smallBuf && len(w.bufs) > 0 {
		buf = w.bufs[len(w.bufs)-1][:len(data)]
		w.bufs = w.bufs[:len(w.bufs)-1]
	} else if len(data) <= smallBuf {
		buf = make([]byte, len(data), smallBuf)
	} else {
		buf = make([]byte, len(data))
	}
	copy(buf, data)
	i := len(h.q)
	for i > 0 && seqLT(seq, h.q[i-1].seq) {
		i--
	}
	h.q = append(h.q, qseg{})
	copy(h.q[i+1:], h.q[i:])
	h.q[i] = qseg{seq: seq, data: buf, frame: frame, ts: ts, fin: fin}
	h.qbytes += len(buf)
	w.queued += len(buf)
	w.stats.Queued++
	w.wait(out)
	if h.qbytes > w.opt.MaxBufferedPerConn || w.queued > w.opt.MaxBufferedTotal {
		w.stats.BufferCapFlushes++
		w.flush(h, side, out, 0, true)
	}
}

// drain delivers the queued segments that the stream has reached.
func (w *worker) drain(h *half, side int, out *session) {
	for len(h.q) > 0 && !seqLT(h.next, h.q[0].seq) {
		q := h.q[0]
		end := q.seq + uint32(len(q.data))
		if seqLT(q.seq, h.next) {
			h.compare(out, side, q.seq, q.data, q.frame)
		}
		if seqLT(h.next, end) {
			d := q.data[h.next-q.seq:]
			h.next = end
			h.put(out, side, d, q.frame, q.ts)
		}
		fin := q.fin && !seqLT(end, h.next)
		w.pop(h)
		if fin {
			h.done, h.next = true, end+1
			w.dropQueue(h)
			return
		}
	}
}

// flush gives up the holes in front of queued bytes: below limit (the
// peer's acknowledgment) or, with all, every hole. Each hole becomes a gap,
// then what follows it is delivered.
func (w *worker) flush(h *half, side int, out *session, limit uint32, all bool) {
	for len(h.q) > 0 && !h.done {
		q := &h.q[0]
		if !all && !seqLT(h.next, limit) {
			return
		}
		if seqLT(h.next, q.seq) {
			to := q.seq
			if !all && seqLT(limit, to) {
				to = limit // the peer has these; beyond them the hole may still fill
			}
			out.gap(side, int64(to-h.next), q.frame, q.ts)
			h.next, h.tailN = to, 0
		}
		w.drain(h, side, out)
	}
}

// flushOlder gives up the holes in front of bytes queued before t.
func (w *worker) flushOlder(h *half, side int, out *session, t time.Time) {
	last := -1
	for i := range h.q {
		if h.q[i].ts.Before(t) {
			last = i
		}
	}
	if last < 0 {
		return
	}
	limit := h.q[last].seq + uint32(len(h.q[last].data))
	if h.q[last].fin {
		limit++
	}
	w.flush(h, side, out, limit, false)
}

func (w *worker) pop(h *half) {
	q := h.q[0]
	h.qbytes -= len(q.data)
	w.queued -= len(q.data)
	if cap(q.data) == smallBuf && len(w.bufs) < 4096 {
		w.bufs = append(w.bufs, q.data[:0])
	}
	copy(h.q, h.q[1:])
	h.q[len(h.q)-1] = qseg{}
	h.q = h.q[:len(h.q)-1]
}

func (w *worker) dropQueue(h *half) {
	for len(h.q) > 0 {
		w.pop(h)
	}
}
