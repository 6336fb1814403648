package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// Scanners of the spam cases (issue "Spam and authentication through
// OPES"): the same messages through opes-callout's spamd service and
// through spamc called by the command service, and through Postfix with
// opes-milter and the rspamd service and with rspamd's own milter proxy.
const (
	scanSpamd        = "spamd"         // opes pair, the native spamd service
	scanSpamc        = "spamc"         // opes pair, spamc through the command service
	scanRspamd       = "rspamd"        // opes pair, the rspamd service
	scanRspamdMilter = "rspamd-milter" // rspamd's proxy worker as the milter (self_scan)
)

// scanChain is the chain of the spam cases.
const scanChain = `services = ["scanner"]`

// scannerServices returns the configuration of the scanner service.
func scannerServices(kind, addr string, sessions int) string {
	head := `
# opes-bench: the scanner of the spam cases.
[services.scanner]
uri = "http://opes-milter.example/services/scanner"

[callout.services.scanner]
uri = "http://opes-milter.example/services/scanner"
`
	host, port, _ := net.SplitHostPort(addr)
	switch kind {
	case scanSpamd:
		return head + fmt.Sprintf("kind = \"spamd\"\naddress = %q\nmax_connections = %d\nkill = 500\ntag2 = 400\n", addr, sessions)
	case scanSpamc:
		return head + fmt.Sprintf("kind = \"command\"\nargv = [\"spamc\", \"-d\", %q, \"-p\", %q, \"-x\", \"-E\"]\n"+
			"exit_codes = { 0 = \"headers\", 1 = \"reject\" }\ndefault = \"tempfail\"\n", host, port)
	case scanRspamd:
		return head + fmt.Sprintf("kind = \"rspamd\"\naddress = %q\nmax_connections = %d\n", addr, sessions)
	}
	return ""
}

// startSpamd starts spamd -L (local tests only) as nobody on a free port,
// ready when it answers PING.
func (e *env) startSpamd(dir string, sessions int) (*child, string, error) {
	bin, err := peer("spamd")
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	argv := []string{bin, "--local", "--nouser-config", "--username=nobody", "--listen=" + addr,
		"--allowed-ips=127.0.0.1", "--min-children=" + strconv.Itoa(min(sessions, 4)),
		"--max-children=" + strconv.Itoa(sessions), "--syslog=stderr", "--pidfile=" + filepath.Join(dir, "spamd.pid")}
	c, err := startChild("spamd", argv, dir, filepath.Join(dir, "spamd.log"), func() bool { return peerprobe.Spamd(addr) })
	return c, addr, err
}

// rspamdRun is a running rspamd with its loopback resolver.
type rspamdRun struct {
	*child
	Addr, MilterAddr string
	// Socket is the normal worker's unix socket, which the rspamd
	// service uses: rspamd on the same host, as an admin sets it up
	// (rspamd closes every connection after its answer, and a unix
	// socket's connect and close cost far less than a TCP one's).
	Socket string
	dns    net.PacketConn
}

// Stop stops rspamd and the resolver.
func (r *rspamdRun) Stop() {
	r.child.Stop()
	r.dns.Close()
}

// startRspamd starts rspamd offline: its DNS goes to a loopback resolver
// of the bench's own that answers NXDOMAIN to everything; the normal
// worker and the proxy worker as a milter (self_scan) listen on free
// ports, the normal worker on a unix socket in dir too; the hyperscan
// cache is shared across runs.
func (e *env) startRspamd(dir string) (*rspamdRun, error) {
	bin, err := peer("rspamd")
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go nxdomain(pc)
	r := &rspamdRun{dns: pc}
	ports, err := freeAddrs(3)
	if err != nil {
		pc.Close()
		return nil, err
	}
	r.Addr, r.MilterAddr = ports[0], ports[2]
	r.Socket = filepath.Join(dir, "rspamd.sock")
	conf := filepath.Join(dir, "rspamd")
	db := filepath.Join(os.TempDir(), "opes-milter-rspamd-db")
	files := map[string]string{
		"worker-normal.inc":     fmt.Sprintf("bind_socket = %q;\nbind_socket = \"%s mode=0666\";\ncount = 1;\n", ports[0], r.Socket),
		"worker-controller.inc": fmt.Sprintf("bind_socket = %q;\ncount = 1;\n", ports[1]),
		"worker-proxy.inc": fmt.Sprintf("bind_socket = %q;\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n"+
			"upstream \"local\" {\n  default = yes;\n  self_scan = yes;\n}\n", ports[2]),
		"worker-fuzzy.inc": "count = 0;\n",
		"options.inc":      fmt.Sprintf("dns { nameserver = [%q]; timeout = 0.3s; retransmits = 1; }\n", pc.LocalAddr().String()),
		"actions.conf":     "reject = 150;\nadd_header = 50;\ngreylist = 40;\n",
	}
	for _, d := range []string{filepath.Join(conf, "local.d"), filepath.Join(conf, "run"), db} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			pc.Close()
			return nil, err
		}
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(conf, "local.d", k), []byte(v), 0o644); err != nil {
			pc.Close()
			return nil, err
		}
	}
	argv := []string{bin, "-f", "--var", "LOCAL_CONFDIR=" + conf, "--var", "DBDIR=" + db,
		"--var", "RUNDIR=" + filepath.Join(conf, "run"), "--var", "LOGDIR=" + filepath.Join(conf, "run")}
	if u, err := user.Lookup("_rspamd"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{conf, db} {
			filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
		}
		argv = append(argv, "-u", "_rspamd", "-g", "_rspamd")
	}
	// The first start compiles the hyperscan cache: up to minutes.
	r.child, err = startChildWithin("rspamd", argv, dir, filepath.Join(dir, "rspamd.log"), 300*time.Second,
		func() bool { return peerprobe.Rspamd(r.Addr) && peerprobe.Listening(r.MilterAddr) })
	if err != nil {
		pc.Close()
		return nil, err
	}
	return r, nil
}

// nxdomain answers every DNS query on pc with NXDOMAIN until pc is
// closed, so that rspamd's lookups stay on the machine and fail at once.
func nxdomain(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < 12 {
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		q[2] = 0x80 | q[2]&0x79 // QR; opcode and RD kept, AA and TC cleared
		q[3] = 0x80 | 3         // RA, RCODE NXDOMAIN
		// No answer, authority or additional records (an EDNS OPT record of
		// the query is dropped with them).
		q[6], q[7], q[8], q[9], q[10], q[11] = 0, 0, 0, 0, 0, 0
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5 // the root label, QTYPE and QCLASS
		if end > len(q) {
			continue
		}
		pc.WriteTo(q[:end], from)
	}
}

// scanRatios are the targets of the spam cases: opes-callout's own CPU
// (spamc's included, spamd's not) with the spamd service against spamc by
// the command service; Postfix with opes-milter and the rspamd service
// against Postfix with rspamd's milter (rspamd counted in both).
var scanRatios = []ratioRow{
	{"opes-callout: spamd service / spamc command", "opes-callout CPU per message", "spamd", "spamc", figComponent("opes-callout"), false, "≤ 0.7", 0.7},
	{"(s) / (s')", "CPU per message, spamd not counted", "spamd", "spamc", figCPU, false, "", 0},
	{"Postfix+rspamd service / Postfix+rspamd milter", "msg/s", "postfix+rspamd", "postfix+rspamd-milter", figTput, false, "≥ 0.9", 0.9},
	{"Postfix+rspamd service / Postfix+rspamd milter", "CPU per message", "postfix+rspamd", "postfix+rspamd-milter", figCPU, false, "≤ 1.2", 1.2},
	// The targets are the two daemons'; -local is reported beside them.
	{"Postfix+rspamd service (-local) / Postfix+rspamd milter", "msg/s", "postfix+rspamd-local", "postfix+rspamd-milter", figTput, false, "", 0},
	{"Postfix+rspamd service (-local) / Postfix+rspamd milter", "CPU per message", "postfix+rspamd-local", "postfix+rspamd-milter", figCPU, false, "", 0},
	{"Postfix+rspamd service (-local) / Postfix+rspamd service", "CPU per message", "postfix+rspamd-local", "postfix+rspamd", figCPU, false, "", 0},
	{"Postfix+rspamd milter / Postfix+(a)", "msg/s", "postfix+rspamd-milter", "postfix+a", figTput, false, "", 0},
}

// figComponent is the CPU seconds per 1,000 messages of one component.
func figComponent(name string) func(Run) float64 {
	return func(r Run) float64 {
		if r.Messages == 0 {
			return 0
		}
		for _, u := range r.Usage {
			if u.Name == name {
				return u.CPU.Seconds() * 1000 / float64(r.Messages)
			}
		}
		return 0
	}
}
