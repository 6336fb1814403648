package callout

import (
	"errors"
	"flag"
	"io"
	"path/filepath"
	"testing"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The wire tests play a processor byte by byte against the server and
// compare the whole conversation, the server's exact bytes included, with a
// golden transcript in testdata/wire (the format of testdata/profile,
// docs/profile.md 16). Run with -update to rewrite the files after a
// deliberate change, and read the diff.

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/wire")

// wireProc is a scripted processor on one connection to a Server, the
// conversation recorded by ocptest.Wire.
type wireProc struct {
	t   *testing.T
	w   *ocptest.Wire
	off int64 // next original offset of transaction 1
}

// dialWire serves srv on a loopback port and connects to it.
func dialWire(t *testing.T, srv *Server) *wireProc {
	t.Helper()
	return &wireProc{t: t, w: ocptest.NewWire(ocptest.ServeAndDial(t, srv), true)}
}

// send writes one processor message.
func (w *wireProc) send(m *ocp.Message) {
	w.t.Helper()
	if err := w.w.Send(m); err != nil {
		w.t.Fatal(err)
	}
}

// dum sends a DUM of transaction 1 at the next original offset, kept.
func (w *wireProc) dum(d ocpsmtp.Data, payload string) {
	w.t.Helper()
	named := append(d.Params(), ocp.KeptParam(0, w.off+int64(len(payload))))
	w.send(&ocp.Message{Name: ocp.MsgDUM, Anon: []ocp.Value{ocp.Num(1), ocp.Num(w.off)}, Named: named,
		Payload: []byte(payload), HasPayload: true})
	w.off += int64(len(payload))
}

// recv reads the server's next message and records its exact octets.
func (w *wireProc) recv() *ocp.Message {
	w.t.Helper()
	m, err := w.w.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		w.t.Fatalf("reading the server: %v\nso far:\n%s", err, w.w.Log())
	}
	return m
}

// until reads the server's messages up to and including one called name.
func (w *wireProc) until(name string) []*ocp.Message {
	w.t.Helper()
	var out []*ocp.Message
	for {
		m := w.recv()
		if m == nil {
			w.t.Fatalf("connection ended before %s\nso far:\n%s", name, w.w.Log())
		}
		out = append(out, m)
		if m.Name == name {
			return out
		}
	}
}

// note adds a comment line.
func (w *wireProc) note(format string, args ...any) { w.w.Note(format, args...) }

// handshake negotiates offer for one service group of services and
// returns the server's answer.
func (w *wireProc) handshake(services []ocp.Service, offer ocpsmtp.Profile) ocpsmtp.Profile {
	w.t.Helper()
	w.send(&ocp.Message{Name: ocp.MsgCS})
	w.send(&ocp.Message{Name: ocp.MsgNO, Anon: []ocp.Value{ocp.List{}}})
	w.until(ocp.MsgNR)
	w.send(&ocp.Message{Name: ocp.MsgSGC, Anon: []ocp.Value{ocp.Num(1), ocp.ServicesValue(services)}})
	w.send(&ocp.Message{Name: ocp.MsgNO, Anon: []ocp.Value{ocp.FeaturesValue([]ocp.Feature{offer.Feature()})},
		Named: []ocp.Param{ocp.NewParam(ocp.ParamSG, ocp.Num(1))}})
	nr := w.until(ocp.MsgNR)
	f, err := ocp.ParseFeature(nr[len(nr)-1].Anon[0])
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := ocpsmtp.ParseProfile(f)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// compare checks the transcript against testdata/wire/name.
func (w *wireProc) compare(name, comment string) {
	w.t.Helper()
	ocptest.CompareGolden(w.t, filepath.Join("testdata", "wire", name), comment, w.w.Log(), *update)
}
