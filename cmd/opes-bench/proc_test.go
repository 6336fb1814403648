package main

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

func TestParseStat(t *testing.T) {
	line := "4242 (smtpd (x) y) S 17 4242 4242 0 -1 4194560 1000 0 0 0 150 50 30 20 20 0 1 0 100 1000 100\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != 4242 || st.PPid != 17 || st.Comm != "smtpd (x) y" || st.State != 'S' || st.CPU != 2500*time.Millisecond {
		t.Errorf("parseStat = %+v", st)
	}
	for _, bad := range []string{"", "1 (a S 1", "x (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14", "1 (a) S 1 2 3", "1 (a) S 1 2 3 4 5 6 7 8 9 10 x 12 13 14"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != os.Getpid() || st.PPid != os.Getppid() || st.State == 0 {
		t.Errorf("readStat(self) = %+v", st)
	}
	if vmHWM(os.Getpid()) <= 0 || selfHWM() <= 0 {
		t.Error("no peak RSS for this process")
	}
	if vmHWM(-1) != 0 {
		t.Error("peak RSS of no process")
	}
}

func TestParseHWM(t *testing.T) {
	status := "Name:\tx\nVmPeak:\t 1000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n"
	if got := parseHWM([]byte(status)); got != 2<<20 {
		t.Errorf("parseHWM = %d", got)
	}
	if got := parseHWM([]byte("Name: x\n")); got != 0 {
		t.Errorf("parseHWM without VmHWM = %d", got)
	}
}

func TestTree(t *testing.T) {
	procs := []procStat{
		{Pid: 1, PPid: 0}, {Pid: 10, PPid: 1}, {Pid: 11, PPid: 10}, {Pid: 12, PPid: 11},
		{Pid: 13, PPid: 10}, {Pid: 20, PPid: 1},
	}
	got := map[int]bool{}
	for _, p := range tree(procs, 10) {
		got[p.Pid] = true
	}
	if len(got) != 4 || !got[10] || !got[11] || !got[12] || !got[13] {
		t.Errorf("tree(10) = %v", got)
	}
	if len(tree(procs, 99)) != 0 {
		t.Error("tree of a missing root")
	}
}

func TestListeningAndEstablished(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	addr := ln.Addr().String()
	if !peerprobe.Listening(addr) {
		t.Fatalf("%s not seen listening", addr)
	}
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, s)
	}
	if n := establishedTo(addr); n != 3 {
		t.Errorf("establishedTo = %d; want 3", n)
	}
	for _, c := range conns {
		c.Close()
	}
	ln.Close()
	if peerprobe.Listening(addr) || peerprobe.Listening("nonsense") || establishedTo("nonsense") != 0 {
		t.Error("closed or bad address seen")
	}
}

func TestMeter(t *testing.T) {
	m := startMeter([]Component{{Name: "self", Pid: os.Getpid()}, {Name: "driver", Driver: true}})
	deadline := time.Now().Add(300 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) { // burn some CPU
		n++
	}
	u := m.Stop()
	if len(u) != 2 || u[0].Name != "self" || !u[1].Driver {
		t.Fatalf("usage %+v", u)
	}
	if u[0].CPU <= 0 || u[1].CPU <= 0 || u[0].MaxHWM() <= 0 || u[1].MaxHWM() <= 0 {
		t.Errorf("usage %+v (loop ran %d times)", u, n)
	}
}
