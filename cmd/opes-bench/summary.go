package main

// Summary is the figures of one case over its runs.
type Summary struct {
	Case       Case
	Runs       int
	Messages   int // over all runs
	Errors     int
	Throughput Spread // messages/s
	P50, P99   Spread // ms; direct cases only
	CPUPer1000 Spread // CPU seconds per 1,000 messages
	// Components: per component the median CPU share and the largest
	// peak RSS seen in any run, in the order of the first run.
	Components []ComponentSummary
	FirstError string
}

// ComponentSummary is one process tree of a case over its runs.
type ComponentSummary struct {
	Name       string
	Driver     bool
	Scanner    bool
	CPUPer1000 Spread
	HWM        int64  // largest VmHWM of any of its processes, any run
	HWMComm    string // the process that had it
	Procs      int    // most processes of the tree seen in one run
}

// summarize reduces the runs of one case.
func summarize(c Case, runs []Run) Summary {
	s := Summary{Case: c, Runs: len(runs)}
	var tput, p50, p99, cpu []float64
	comps := map[string]*ComponentSummary{}
	perComp := map[string][]float64{}
	for _, r := range runs {
		s.Messages += r.Messages
		s.Errors += r.Errors
		if s.FirstError == "" && len(r.FirstErrors) > 0 {
			s.FirstError = r.FirstErrors[0]
		}
		tput = append(tput, r.Throughput())
		cpu = append(cpu, r.CPUPer1000())
		if len(r.Latencies) > 0 {
			p50 = append(p50, ms(percentile(r.Latencies, 0.50)))
			p99 = append(p99, ms(percentile(r.Latencies, 0.99)))
		}
		for _, u := range r.Usage {
			cs := comps[u.Name]
			if cs == nil {
				cs = &ComponentSummary{Name: u.Name, Driver: u.Driver, Scanner: u.Scanner}
				comps[u.Name] = cs
				s.Components = append(s.Components, ComponentSummary{Name: u.Name})
			}
			procs := 0
			for _, p := range u.Peaks {
				procs += p.Procs
				if p.HWM > cs.HWM {
					cs.HWM, cs.HWMComm = p.HWM, p.Comm
				}
			}
			cs.Procs = max(cs.Procs, procs)
			if r.Messages > 0 {
				perComp[u.Name] = append(perComp[u.Name], u.CPU.Seconds()*1000/float64(r.Messages))
			}
		}
	}
	s.Throughput, s.CPUPer1000 = spreadOf(tput), spreadOf(cpu)
	s.P50, s.P99 = spreadOf(p50), spreadOf(p99)
	for i, c := range s.Components {
		cs := *comps[c.Name]
		cs.CPUPer1000 = spreadOf(perComp[c.Name])
		s.Components[i] = cs
	}
	return s
}

// Ratio is a ratio of two cases' figures, taken per round (run i of one
// case against run i of the other, which ran minutes apart at most) and
// summarised over the rounds.
type Ratio struct {
	Name   string
	Figure string
	Spread Spread
}

// pairedRatio computes f(num[i]) / f(den[i]) for each round.
func pairedRatio(num, den []Run, f func(Run) float64) Spread {
	var v []float64
	for i := range min(len(num), len(den)) {
		if d := f(den[i]); d != 0 {
			v = append(v, f(num[i])/d)
		}
	}
	return spreadOf(v)
}

// pairedDiff computes f(a[i]) - f(b[i]) for each round.
func pairedDiff(a, b []Run, f func(Run) float64) Spread {
	var v []float64
	for i := range min(len(a), len(b)) {
		v = append(v, f(a[i])-f(b[i]))
	}
	return spreadOf(v)
}

// Figures compared by ratios.
func figCPU(r Run) float64  { return r.CPUPer1000() }
func figTput(r Run) float64 { return r.Throughput() }
func figP50(r Run) float64  { return ms(percentile(r.Latencies, 0.50)) }
func figP99(r Run) float64  { return ms(percentile(r.Latencies, 0.99)) }

// figMsgTime is the wall time per message at the run's concurrency, in
// milliseconds (1 / throughput).
func figMsgTime(r Run) float64 {
	if t := r.Throughput(); t > 0 {
		return 1000 / t
	}
	return 0
}
