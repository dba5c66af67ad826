package main

import (
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/smtpcap/smtpcap/capture"
)

// frameMap turns the merged input's frame numbers into file:frame when
// several files are read (frame 57 of the merge is b.pcap:34). It keeps one
// run per switch between files, at most maxRuns; past that, or when frames
// were skipped (a BPF filter, an unsupported link type: the merge numbers
// them but does not say from which file), it falls back to #N.
type frameMap struct {
	mu     sync.RWMutex
	names  []string
	runs   []frameRun
	local  []uint64 // frames read so far per file
	last   uint64
	broken bool
}

type frameRun struct {
	global, local uint64
	file          int
}

const maxRuns = 1 << 20

func newFrameMap(files []string) *frameMap {
	if len(files) < 2 {
		return nil
	}
	return &frameMap{local: make([]uint64, len(files)), names: shortNames(files)}
}

// shortNames names files by their base name, or parent/base where two
// share a base name (a/server.pcap, b/server.pcap).
func shortNames(files []string) []string {
	seen := map[string]int{}
	for _, f := range files {
		seen[filepath.Base(f)]++
	}
	var names []string
	for _, f := range files {
		if seen[filepath.Base(f)] > 1 {
			names = append(names, filepath.Join(filepath.Base(filepath.Dir(f)), filepath.Base(f)))
		} else {
			names = append(names, filepath.Base(f))
		}
	}
	return names
}

// add notes one frame as the source returns it.
func (m *frameMap) add(f *capture.Frame) {
	if m == nil || m.broken {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.Number != m.last+1 || f.File < 0 || f.File >= len(m.local) {
		m.broken = true // a frame was skipped: its file is unknown
		return
	}
	m.last = f.Number
	m.local[f.File]++
	n := len(m.runs)
	if n > 0 && m.runs[n-1].file == f.File {
		return
	}
	if n >= maxRuns {
		m.broken = true
		return
	}
	m.runs = append(m.runs, frameRun{global: f.Number, local: m.local[f.File], file: f.File})
}

// name is "file:frame", or "#N" when the map cannot tell.
func (m *frameMap) name(n uint64) string {
	if m == nil {
		return "#" + strconv.FormatUint(n, 10)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.broken || n == 0 || n > m.last {
		return "#" + strconv.FormatUint(n, 10)
	}
	i := sort.Search(len(m.runs), func(i int) bool { return m.runs[i].global > n }) - 1
	if i < 0 {
		return "#" + strconv.FormatUint(n, 10)
	}
	r := m.runs[i]
	return m.names[r.file] + ":" + strconv.FormatUint(r.local+n-r.global, 10)
}

// fn returns name as a function, nil for a single file.
func (m *frameMap) fn() func(uint64) string {
	if m == nil {
		return nil
	}
	return m.name
}
