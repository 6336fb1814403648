package main

import (
	"cmp"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Component is a process tree measured as one part of a case: a daemon,
// or a Postfix master with every process below it.
type Component struct {
	Name string
	// Pid is the root of the tree; 0 means this process alone (the load
	// generator), measured with getrusage.
	Pid int
	// Driver marks the load generator: measured and reported, but not
	// counted in the case's CPU.
	Driver bool
	// Scanner marks a scanner whose cost the case does not compare
	// (spamd): reported, not counted.
	Scanner bool
}

// Usage is what one component used during a measurement window.
type Usage struct {
	Name    string
	Driver  bool
	Scanner bool
	CPU     time.Duration
	Peaks   []Peak // by process name, largest first
}

// Peak is the largest VmHWM seen among the processes of one name.
type Peak struct {
	Comm  string
	Procs int   // distinct processes of that name seen
	HWM   int64 // bytes
}

// MaxHWM returns the largest peak of the component.
func (u Usage) MaxHWM() int64 {
	var m int64
	for _, p := range u.Peaks {
		m = max(m, p.HWM)
	}
	return m
}

// meter measures components over a window: CPU as the difference of two
// snapshots, peak RSS by sampling (processes may end within the window).
type meter struct {
	comps []Component
	start []time.Duration

	mu    sync.Mutex
	peaks []map[string]*peakAcc // per component, by comm

	stop chan struct{}
	done chan struct{}
}

type peakAcc struct {
	pids map[int]bool
	hwm  int64
}

// meterInterval is how often peak RSS is sampled.
const meterInterval = 200 * time.Millisecond

// startMeter takes the first CPU snapshot and starts sampling.
func startMeter(comps []Component) *meter {
	m := &meter{comps: comps, stop: make(chan struct{}), done: make(chan struct{})}
	m.peaks = make([]map[string]*peakAcc, len(comps))
	for i := range m.peaks {
		m.peaks[i] = map[string]*peakAcc{}
	}
	m.start = m.cpu(m.sample())
	go func() {
		defer close(m.done)
		t := time.NewTicker(meterInterval)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

// Stop takes the last snapshot and returns the usage of each component.
func (m *meter) Stop() []Usage {
	close(m.stop)
	<-m.done
	end := m.cpu(m.sample())
	out := make([]Usage, len(m.comps))
	for i, c := range m.comps {
		u := Usage{Name: c.Name, Driver: c.Driver, Scanner: c.Scanner, CPU: max(end[i]-m.start[i], 0)}
		for comm, p := range m.peaks[i] {
			u.Peaks = append(u.Peaks, Peak{Comm: comm, Procs: len(p.pids), HWM: p.hwm})
		}
		slices.SortFunc(u.Peaks, func(a, b Peak) int {
			return cmp.Or(cmp.Compare(b.HWM, a.HWM), cmp.Compare(a.Comm, b.Comm))
		})
		out[i] = u
	}
	return out
}

// sample reads the process trees, records their peak RSS and returns them.
func (m *meter) sample() [][]procStat {
	var all []procStat
	trees := make([][]procStat, len(m.comps))
	for i, c := range m.comps {
		if c.Pid == 0 {
			continue
		}
		if all == nil {
			all = allProcs()
		}
		trees[i] = tree(all, c.Pid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, t := range trees {
		for _, p := range t {
			if p.State == 'Z' {
				continue
			}
			acc := m.peaks[i][p.Comm]
			if acc == nil {
				acc = &peakAcc{pids: map[int]bool{}}
				m.peaks[i][p.Comm] = acc
			}
			acc.pids[p.Pid] = true
			acc.hwm = max(acc.hwm, vmHWM(p.Pid))
		}
	}
	for i, c := range m.comps {
		if c.Pid == 0 {
			acc := m.peaks[i]["opes-bench"]
			if acc == nil {
				acc = &peakAcc{pids: map[int]bool{0: true}}
				m.peaks[i]["opes-bench"] = acc
			}
			acc.hwm = max(acc.hwm, selfHWM())
		}
	}
	return trees
}

// cpu sums the CPU time of each component's tree.
func (m *meter) cpu(trees [][]procStat) []time.Duration {
	out := make([]time.Duration, len(m.comps))
	for i, c := range m.comps {
		if c.Pid == 0 {
			out[i] = selfCPU()
			continue
		}
		for _, p := range trees[i] {
			out[i] += p.CPU
		}
	}
	return out
}

// selfCPU is the user and system time of this process (not its children).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfHWM is this process's peak RSS.
func selfHWM() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}
