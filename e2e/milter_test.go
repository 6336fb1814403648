package e2e

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/d--j/go-milter"
)

// blockedRcpt is the recipient the harness milter rejects with 550 5.1.1.
const blockedRcpt = "blocked@example.com"

// harnessMilter is the in-process milter the harness self-tests put behind the real
// MTAs: it rejects RCPT <blocked@example.com> with 550 5.1.1 and adds
// "X-Harness: ok" at the end of every message.
type harnessMilter struct {
	milter.NoOpMilter
	stats *milterStats
}

// milterStats counts what the MTAs sent to a harnessMilter server.
type milterStats struct {
	connections atomic.Int64
	messages    atomic.Int64
	rejected    atomic.Int64
}

func (h *harnessMilter) NewConnection(milter.Modifier) error {
	h.stats.connections.Add(1)
	return nil
}

func (h *harnessMilter) RcptTo(rcpt, _ string, _ milter.Modifier) (*milter.Response, error) {
	if rcpt == blockedRcpt {
		h.stats.rejected.Add(1)
		return milter.RejectWithCodeAndReason(550, "5.1.1 blocked by the harness milter")
	}
	return milter.RespContinue, nil
}

func (h *harnessMilter) EndOfMessage(m milter.Modifier) (*milter.Response, error) {
	h.stats.messages.Add(1)
	if err := m.AddHeader("X-Harness", "ok"); err != nil {
		return nil, err
	}
	return milter.RespAccept, nil
}

// startHarnessMilter serves harnessMilter on a free loopback port until the test
// ends and returns its address and counters.
func startHarnessMilter(t *testing.T) (addr *net.TCPAddr, stats *milterStats) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stats = &milterStats{}
	srv := milter.NewServer(
		milter.WithMilter(func() milter.Milter { return &harnessMilter{stats: stats} }),
		milter.WithAction(milter.OptAddHeader),
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr), stats
}
