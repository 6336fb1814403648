package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// procStat is one line of /proc/PID/stat.
type procStat struct {
	Pid, PPid int
	Comm      string
	State     byte
	// CPU is user plus system time of the process and of its children
	// that it has waited for (utime+stime+cutime+cstime), so the CPU of
	// a short-lived Postfix daemon stays counted in its master.
	CPU time.Duration
}

// parseStat parses the contents of /proc/PID/stat.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return st, fmt.Errorf("proc: bad stat line %q", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return st, fmt.Errorf("proc: bad pid in %q", b)
	}
	st.Pid, st.Comm = pid, string(b[open+1:end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[11..14] fields
	// 14..17 (utime, stime, cutime, cstime).
	if len(f) < 15 {
		return st, fmt.Errorf("proc: short stat line %q", b)
	}
	st.State = f[0][0]
	if st.PPid, err = strconv.Atoi(f[1]); err != nil {
		return st, fmt.Errorf("proc: bad ppid in %q", b)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return st, fmt.Errorf("proc: bad CPU time in %q", b)
		}
		ticks += n
	}
	st.CPU = time.Duration(ticks) * time.Second / userHZ
	return st, nil
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// allProcs reads the stat line of every process.
func allProcs() []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]procStat, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// tree returns the processes of procs that are root or descend from it.
func tree(procs []procStat, root int) []procStat {
	children := map[int][]int{}
	byPid := map[int]procStat{}
	for _, p := range procs {
		children[p.PPid] = append(children[p.PPid], p.Pid)
		byPid[p.Pid] = p
	}
	var out []procStat
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p, ok := byPid[pid]; ok {
			out = append(out, p)
		}
		stack = append(stack, children[pid]...)
	}
	return out
}

// vmHWM returns the peak resident set size of a process in bytes
// (VmHWM in /proc/PID/status), or 0 if it cannot be read.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseHWM(b)
}

func parseHWM(status []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// establishedTo counts the TCP connections in state ESTABLISHED whose
// remote end is addr ("127.0.0.1:PORT"), from /proc/net/tcp: the OCP
// connections opes-milter holds to a callout server.
func establishedTo(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "01" {
			continue
		}
		if remote, ok := peerprobe.ParseProcAddr(fields[2]); ok && remote == ap {
			n++
		}
	}
	return n
}
