package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// RotateOptions configure a Rotator, as tcpdump's -w/-C/-G/-W.
type RotateOptions struct {
	Dir      string        // created if missing
	Prefix   string        // file names are PREFIX-YYYYMMDDTHHMMSSZ-NNNNNN.pcapng; "smtpcap" if empty
	MaxBytes int64         // start a new file past this size (0: no limit)
	Every    time.Duration // start a new file when a frame is this much later than the file's first (0: never)
	Count    int           // keep at most this many files, removing the oldest (0: all)
	Ifaces   []RotateIface // the interfaces, in the order of Frame.File
	// Owner, if UID >= 0, is given every file (and the directory) so that
	// it stays writable after the privileges are dropped.
	UID, GID int
}

// RotateIface describes one interface in the pcapng files.
type RotateIface struct {
	Name     string
	LinkType layers.LinkType
	SnapLen  int
	Filter   string
}

// Rotator writes frames to a ring of pcapng files.
type Rotator struct {
	opt    RotateOptions
	f      *os.File
	w      *pcapgo.NgWriter
	size   int64
	first  time.Time
	seq    int
	files  []string // still on disk, oldest first
	closed bool
}

// NewRotator creates the directory and the first file, so that a
// permission problem shows before the capture starts.
func NewRotator(opt RotateOptions, now time.Time) (*Rotator, error) {
	if len(opt.Ifaces) == 0 {
		return nil, errors.New("capture: rotate: no interface")
	}
	if opt.Prefix == "" {
		opt.Prefix = "smtpcap"
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("capture: -w %s: %w", opt.Dir, err)
	}
	if opt.UID >= 0 {
		if err := os.Chown(opt.Dir, opt.UID, opt.GID); err != nil {
			return nil, fmt.Errorf("capture: -w %s: %w", opt.Dir, err)
		}
	}
	r := &Rotator{opt: opt}
	if err := r.open(now); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Rotator) open(now time.Time) error {
	r.seq++
	name := filepath.Join(r.opt.Dir, fmt.Sprintf("%s-%s-%06d.pcapng", r.opt.Prefix, now.UTC().Format("20060102T150405Z"), r.seq))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("capture: -w: %w", err)
	}
	if r.opt.UID >= 0 {
		if err := f.Chown(r.opt.UID, r.opt.GID); err != nil {
			f.Close()
			return fmt.Errorf("capture: -w: %w", err)
		}
	}
	ifs := r.opt.Ifaces
	w, err := pcapgo.NewNgWriterInterface(f, rotateNgIface(ifs[0]), pcapgo.DefaultNgWriterOptions)
	for _, ifc := range ifs[1:] {
		if err == nil {
			_, err = w.AddInterface(rotateNgIface(ifc))
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("capture: -w %s: %w", name, err)
	}
	r.f, r.w, r.size, r.first = f, w, 0, now
	r.files = append(r.files, name)
	for r.opt.Count > 0 && len(r.files) > r.opt.Count {
		_ = os.Remove(r.files[0])
		r.files = r.files[1:]
	}
	return nil
}

func rotateNgIface(i RotateIface) pcapgo.NgInterface {
	return pcapgo.NgInterface{Name: i.Name, LinkType: i.LinkType, SnapLength: uint32(max(0, i.SnapLen)), Filter: i.Filter,
		TimestampResolution: 9, OS: "linux"}
}

// Write appends one frame (Frame.File names its interface), first starting
// a new file if the current one is full or old enough.
func (r *Rotator) Write(f Frame) error {
	if r.closed {
		return errors.New("capture: rotate: closed")
	}
	ts := f.CI.Timestamp
	if (r.opt.MaxBytes > 0 && r.size >= r.opt.MaxBytes) || (r.opt.Every > 0 && ts.Sub(r.first) >= r.opt.Every) {
		if err := r.closeFile(); err != nil {
			return err
		}
		if err := r.open(ts); err != nil {
			return err
		}
	}
	if r.size == 0 {
		r.first = ts
	}
	ci := f.CI
	ci.InterfaceIndex = f.File
	if err := r.w.WritePacket(ci, f.Data); err != nil {
		return fmt.Errorf("capture: -w %s: %w", r.f.Name(), err)
	}
	r.size += 32 + int64((len(f.Data)+3)&^3) // an enhanced packet block
	return nil
}

// Flush writes what is buffered, so that the current file can be read.
func (r *Rotator) Flush() error {
	if r.closed {
		return nil
	}
	return r.w.Flush()
}

func (r *Rotator) closeFile() error {
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("capture: -w %s: %w", r.f.Name(), err)
	}
	return nil
}

// Files lists the files still on disk, oldest first.
func (r *Rotator) Files() []string { return append([]string(nil), r.files...) }

// Close flushes and closes the current file.
func (r *Rotator) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.closeFile()
}
