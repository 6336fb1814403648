package ocpsmtp

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
)

// The golden transcripts in testdata/profile are read with the ocp
// decoder and replayed through a small reference interpreter of the
// profile rules of docs/profile.md. The interpreter's verdict (what the
// processor does with the adapted flow) must match the expectation below.

type outcome struct {
	Mail       string   // "" unchanged, "change <payload>", "error <reply>"
	Rcpts      []string // per original RCPT: "keep", "delete", "change <payload>", "error <reply>"
	Added      []string // added recipients
	Data       string   // "unchanged", "changed", "error <reply>", "" when no adaptive data part
	AddHeaders []string
	Advice     []Advice
}

func TestGoldenTranscripts(t *testing.T) {
	want := map[string]outcome{
		"receiver.txt": {
			Rcpts: []string{"keep", "error 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"},
			Data:  "unchanged", AddHeaders: []string{"X-Spam-Flag: NO", "X-Spam-Score: 0.1 (threshold 5.0)"},
		},
		"sender.txt": {
			Mail: "change <alice@example.org> SIZE=279 BODY=8BITMIME RET=HDRS ENVID=QQ314159",
			Data: "unchanged", AddHeaders: []string{"X-Original-Sender: alice@laptop.example.org"},
		},
	}
	files, err := filepath.Glob("../../testdata/profile/*.txt")
	if err != nil || len(files) != len(want) {
		t.Fatalf("golden files: %v, %v; want %d", files, err, len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := splitTranscript(data)
			if err != nil {
				t.Fatal(err)
			}
			var r replay
			for i, m := range msgs {
				if err := r.step(m); err != nil {
					t.Fatalf("message %d (%s: %s): %v", i+1, m.from, m.msg.Name, err)
				}
			}
			if !r.ended {
				t.Fatalf("transcript ends before TE")
			}
			if got := r.outcome(); !reflect.DeepEqual(got, want[filepath.Base(f)]) {
				t.Errorf("outcome\n got %+v\nwant %+v", got, want[filepath.Base(f)])
			}
		})
	}
}

// TestGoldenMutations checks that the interpreter above refuses broken
// variants of receiver.txt, so that the golden test can fail.
func TestGoldenMutations(t *testing.T) {
	orig, err := os.ReadFile("../../testdata/profile/receiver.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new string
		nth            int // which occurrence of old to replace, 1-based
	}{
		{"DUY not covering the RCPT", "S: DUY 1 53 18;", "S: DUY 1 54 17;", 1},
		{"DUY outside Kept (T32)", "Kept: 53 18\r\n", "Kept: 54 17\r\n", 1},
		{"adapted gap (T25)", "S: DUM 1 18\r\n", "S: DUM 1 19\r\n", 1},
		{"original gap", "P: DUM 1 9\r\n", "P: DUM 1 10\r\n", 1},
		{"SMTP-Error not allowed (T49)", "Allow: (SMTP-Error,Add-Header,Advice)\r\n\r\n20:", "Allow: (Add-Header,Advice)\r\n\r\n20:", 1},
		{"part in both lists (T45)", "Informative-Parts: (IP,HELO,MAIL)", "Informative-Parts: (IP,HELO,MAIL,RCPT)", 2},
		{"unoffered part (T44)", "Informative-Parts: (IP,HELO,MAIL)", "Informative-Parts: (IP,HELO,EHLO)", 2},
		{"informative part changed (T51)", "AM-Part: RCPT\r\nSMTP-Error", "AM-Part: MAIL\r\nSMTP-Error", 1},
		{"DUM without AM-Part", "S: DUM 1 18\r\nAM-Part: RCPT\r\n", "S: DUM 1 18\r\n", 1},
		{"unanswered RAWDATA", "S: DUY 1 91 232\r\nAdd-Header: \"15:X-Spam-Flag: NO\"\r\n;\r\nS: DUM 1 250", "S: DUM 1 18", 1},
		{"DUY of an informative part", "S: DUY 1 53 18;", "S: DUY 1 25 28;", 1},
		{"RCPT addition before DATA", "S: DUY 1 53 18;", "S: DUY 1 53 18;\r\nS: DUM 1 18\r\nAM-Part: RCPT\r\n\r\n5:<x@y>\r\n;", 1},
		{"TS with unknown group", "P: TS 1 1;", "P: TS 1 2;", 1},
	}
	for _, tt := range tests {
		old := tt.old
		i := -1
		for n := 0; n < tt.nth; n++ {
			j := bytes.Index(orig[i+1:], []byte(old))
			if j < 0 {
				t.Fatalf("%s: %q occurs fewer than %d times", tt.name, old, tt.nth)
			}
			i += 1 + j
		}
		data := append(append(append([]byte(nil), orig[:i]...), tt.new...), orig[i+len(old):]...)
		msgs, err := splitTranscript(data)
		if err == nil {
			var r replay
			for _, m := range msgs {
				if err = r.step(m); err != nil {
					break
				}
			}
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
		} else {
			t.Logf("%s: %v", tt.name, err)
		}
	}
}

type sided struct {
	from string // "P" or "S"
	msg  *ocp.Message
}

// splitTranscript reads the golden format with ParseTranscript.
func splitTranscript(data []byte) ([]sided, error) {
	steps, err := ParseTranscript(data)
	if err != nil {
		return nil, err
	}
	out := make([]sided, len(steps))
	for i, st := range steps {
		out[i] = sided{from: "P", msg: st.Message}
		if st.FromServer {
			out[i].from = "S"
		}
	}
	return out, nil
}

// instance is one original part instance sent by the processor.
type instance struct {
	part     Part
	index    string
	off, n   int64
	adaptive bool
	allow    []string
	payload  []byte

	answered bool
	adapted  []byte
	errReply string
}

type replay struct {
	csP, csS       bool
	offer, answer  Profile
	negotiated     bool
	groups         map[string]bool
	xid            string
	org, adp       int64
	keptOff, keptN int64
	orgEnded       bool
	dataSent       bool
	ended          bool
	srvEnded       bool // the server's AME
	lastRank       int
	inst           []*instance
	nextRcpt       int
	added          []string
	addHeaders     []string
	advice         []Advice
}

func (r *replay) step(s sided) error {
	m := s.msg
	if s.from == "P" && !r.csP || s.from == "S" && !r.csS {
		if m.Name != "CS" {
			return fmt.Errorf("first message is not CS")
		}
		if s.from == "P" {
			r.csP = true
		} else {
			r.csS = true
		}
		return nil
	}
	if s.from == "P" {
		return r.processor(m)
	}
	return r.server(m)
}

func (r *replay) processor(m *ocp.Message) error {
	switch m.Name {
	case "NO":
		fs, err := ocp.ParseFeatures(m.Anon[0])
		if err != nil || len(fs) != 1 {
			return fmt.Errorf("NO must offer one feature: %v", err)
		}
		if r.offer, err = ParseProfile(fs[0]); err != nil {
			return err
		}
		if !reflect.DeepEqual(r.offer.Feature(), fs[0]) {
			return fmt.Errorf("offer is not in canonical form")
		}
	case "SGC":
		if r.groups == nil {
			r.groups = map[string]bool{}
		}
		r.groups[string(m.Anon[0].(ocp.Atom))] = true
	case "TS":
		if !r.negotiated || !r.groups[string(m.Anon[1].(ocp.Atom))] {
			return fmt.Errorf("TS before negotiation or with an unknown service group")
		}
		r.xid = string(m.Anon[0].(ocp.Atom))
	case "AMS":
		return r.checkXid(m)
	case "DUM":
		return r.processorDUM(m)
	case "AME":
		r.orgEnded = true
		return r.checkXid(m)
	case "TE":
		r.ended = true
		return r.checkXid(m)
	default:
		return fmt.Errorf("unexpected message")
	}
	return nil
}

func (r *replay) checkXid(m *ocp.Message) error {
	if r.xid == "" || len(m.Anon) == 0 || string(m.Anon[0].(ocp.Atom)) != r.xid {
		return fmt.Errorf("wrong or missing xid")
	}
	return nil
}

func (r *replay) offset(m *ocp.Message) (int64, error) {
	if err := r.checkXid(m); err != nil {
		return 0, err
	}
	return ocp.Uint(m.Anon[1])
}

func (r *replay) processorDUM(m *ocp.Message) error {
	off, err := r.offset(m)
	if err != nil {
		return err
	}
	if off != r.org || !m.HasPayload {
		return fmt.Errorf("original offset %d, want %d (or no payload)", off, r.org)
	}
	d, err := ParseData(m)
	if err != nil {
		return err
	}
	a, i := r.answer.Has(d.Part)
	if !a && !i {
		return fmt.Errorf("part %s not negotiated", d.Part)
	}
	if d.Part.Rank() < r.lastRank {
		return fmt.Errorf("part %s out of SMTP order", d.Part)
	}
	r.lastRank = d.Part.Rank()
	last := len(r.inst) - 1
	continued := d.Part.Splittable() && last >= 0 && r.inst[last].part == d.Part && r.inst[last].index == d.Index
	if !continued && d.Allows(AllowSMTPError) != a {
		return fmt.Errorf("Allow %v: SMTP-Error must be allowed exactly on adaptive parts", d.Allow)
	}
	if p, ok := m.Param(ParamKept); ok {
		if len(p.Values) != 2 {
			return fmt.Errorf("Kept needs offset and size")
		}
		ko, err1 := ocp.Uint(p.Values[0])
		kn, err2 := ocp.Uint(p.Values[1])
		if err1 != nil || err2 != nil || r.keptN > 0 && (ko > r.keptOff || ko+kn < r.keptOff+r.keptN) {
			return fmt.Errorf("Kept %v may only grow", p.Values)
		}
		r.keptOff, r.keptN = ko, kn
	}
	if continued {
		r.inst[last].payload = append(r.inst[last].payload, m.Payload...)
		r.inst[last].n += int64(len(m.Payload))
	} else {
		if len(d.Allow) == 0 {
			return fmt.Errorf("the first DUM of a part instance carries Allow")
		}
		r.inst = append(r.inst, &instance{part: d.Part, index: d.Index, off: off, n: int64(len(m.Payload)),
			adaptive: a, allow: d.Allow, payload: append([]byte(nil), m.Payload...)})
	}
	r.org += int64(len(m.Payload))
	if d.Part.Data() {
		r.dataSent = true
	}
	return checkPartBytes(d.Part, m.Payload)
}

// checkPartBytes checks the exact form of a part (docs/profile.md, "Exact
// bytes of every part"). RAWDATA is checked chunk by chunk only for line
// ends; its header is checked once complete, in outcome.
func checkPartBytes(p Part, b []byte) error {
	s := string(b)
	switch p {
	case PartIP:
		if net.ParseIP(s) == nil || strings.HasPrefix(s, "[") {
			return fmt.Errorf("IP %q is not a bare address", s)
		}
	case PartHELO:
		if s == "" || strings.ContainsAny(s, " \r\n") {
			return fmt.Errorf("HELO %q", s)
		}
	case PartMAIL, PartRCPT:
		addr, _, _ := strings.Cut(s, " ")
		if !strings.HasPrefix(addr, "<") || !strings.HasSuffix(addr, ">") || strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("%s %q: want <address> and arguments", p, s)
		}
	case PartRAWDATA:
		if strings.Count(s, "\n") != strings.Count(s, "\r\n") || strings.Count(s, "\r") != strings.Count(s, "\r\n") {
			return fmt.Errorf("RAWDATA chunk with a bare CR or LF")
		}
	}
	return nil
}

func (r *replay) server(m *ocp.Message) error {
	switch m.Name {
	case "NR":
		f, err := ocp.ParseFeature(m.Anon[0])
		if err != nil {
			return err
		}
		if r.answer, err = ParseProfile(f); err != nil {
			return err
		}
		if err := CheckAnswer(r.offer, r.answer); err != nil {
			return err
		}
		r.negotiated = true
	case "AMS":
		return r.checkXid(m)
	case "DUY":
		return r.serverDUY(m)
	case "DUM":
		return r.serverDUM(m)
	case "AME":
		for _, in := range r.inst {
			if in.adaptive && !in.answered && !in.part.Instanced() {
				return fmt.Errorf("adaptive %s not answered before AME", in.part)
			}
		}
		r.srvEnded = true
		return r.checkXid(m)
	case "TE":
		// The server may end the transaction once its AME is out.
		if !r.srvEnded {
			return fmt.Errorf("server TE before its AME")
		}
		r.ended = true
		return r.checkXid(m)
	default:
		return fmt.Errorf("unexpected message")
	}
	return nil
}

// instanceAt returns the original instance holding the octets [off, off+n).
func (r *replay) instanceAt(off, n int64) *instance {
	for _, in := range r.inst {
		if off >= in.off && off+n <= in.off+in.n {
			return in
		}
	}
	return nil
}

func (r *replay) serverDUY(m *ocp.Message) error {
	if err := r.checkXid(m); err != nil {
		return err
	}
	off, err1 := ocp.Uint(m.Anon[1])
	n, err2 := ocp.Uint(m.Anon[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad DUY offsets")
	}
	if off < r.keptOff || off+n > r.keptOff+r.keptN {
		return fmt.Errorf("DUY %d %d outside the kept area (T32)", off, n)
	}
	in := r.instanceAt(off, n)
	if in == nil || !in.adaptive {
		return fmt.Errorf("DUY %d %d does not lie in one adaptive part instance", off, n)
	}
	d, err := ParseData(m)
	if err != nil {
		return err
	}
	if err := r.annotate(in, d); err != nil {
		return err
	}
	if !in.part.Splittable() {
		if off != in.off || n != in.n {
			return fmt.Errorf("DUY must cover the whole %s", in.part)
		}
		if err := r.answerOrdered(in); err != nil {
			return err
		}
	}
	in.answered = true
	in.adapted = append(in.adapted, in.payload[off-in.off:off-in.off+n]...)
	r.adp += n
	return nil
}

// answerOrdered checks that a RCPT answer goes to the next unanswered one.
func (r *replay) answerOrdered(in *instance) error {
	if in.part != PartRCPT {
		if in.answered {
			return fmt.Errorf("%s answered twice", in.part)
		}
		return nil
	}
	rc := r.rcpts()
	if r.nextRcpt >= len(rc) || rc[r.nextRcpt] != in {
		return fmt.Errorf("RCPT answered out of order")
	}
	r.nextRcpt++
	return nil
}

func (r *replay) rcpts() []*instance {
	var out []*instance
	for _, in := range r.inst {
		if in.part == PartRCPT {
			out = append(out, in)
		}
	}
	return out
}

func (r *replay) annotate(in *instance, d Data) error {
	if d.AddHeader != "" {
		if !contains(partsOf(in.allow), AllowAddHeader) {
			return fmt.Errorf("Add-Header not allowed for %s", in.part)
		}
		r.addHeaders = append(r.addHeaders, d.AddHeader)
	}
	if d.Advice != "" {
		if !contains(partsOf(in.allow), AllowAdvice) {
			return fmt.Errorf("Advice not allowed for %s", in.part)
		}
		r.advice = append(r.advice, d.Advice)
	}
	return nil
}

func partsOf(ss []string) []Part {
	out := make([]Part, len(ss))
	for i, s := range ss {
		out[i] = Part(s)
	}
	return out
}

func (r *replay) serverDUM(m *ocp.Message) error {
	off, err := r.offset(m)
	if err != nil {
		return err
	}
	if off != r.adp {
		return fmt.Errorf("adapted offset %d, want %d (T25)", off, r.adp)
	}
	d, err := ParseData(m)
	if err != nil {
		return err
	}
	r.adp += int64(len(m.Payload))
	// The latest original instance of the part: the target of an
	// annotation, and of the answer for single-instance parts.
	var last *instance
	for _, in := range r.inst {
		if in.part == d.Part && (d.Index == "" || in.index == d.Index) {
			last = in
		}
	}
	if last == nil {
		return fmt.Errorf("answer for %s, which the processor did not send", d.Part)
	}
	if len(m.Payload) == 0 && d.SMTPError == "" && (d.AddHeader != "" || d.Advice != "") {
		return r.annotate(last, d) // annotation DUM: no octets, no answer
	}
	if !last.adaptive {
		return fmt.Errorf("changed %s, which is informative (T51)", d.Part)
	}
	if err := r.annotate(last, d); err != nil {
		return err
	}
	if d.SMTPError != "" && !contains(partsOf(last.allow), AllowSMTPError) {
		return fmt.Errorf("SMTP-Error not allowed (T49)")
	}
	target := last
	if d.Part == PartRCPT {
		rc := r.rcpts()
		if r.nextRcpt == len(rc) {
			if !r.dataSent && !r.orgEnded || d.SMTPError != "" || len(m.Payload) == 0 {
				return fmt.Errorf("RCPT addition before the processor's first data part, or empty")
			}
			r.added = append(r.added, string(m.Payload))
			return nil
		}
		target = rc[r.nextRcpt]
	}
	if !target.part.Splittable() {
		if err := r.answerOrdered(target); err != nil {
			return err
		}
	}
	target.answered = true
	target.errReply = d.SMTPError
	target.adapted = append(target.adapted, m.Payload...)
	return nil
}

func (r *replay) outcome() outcome {
	var o outcome
	for _, in := range r.inst {
		if !in.adaptive {
			continue
		}
		verdict := ""
		switch {
		case in.errReply != "":
			verdict = "error " + in.errReply
		case bytes.Equal(in.adapted, in.payload):
			verdict = "keep"
		case len(in.adapted) == 0:
			verdict = "delete"
		default:
			verdict = "change " + string(in.adapted)
		}
		switch in.part {
		case PartMAIL:
			if verdict != "keep" {
				o.Mail = verdict
			}
		case PartRCPT:
			o.Rcpts = append(o.Rcpts, verdict)
		case PartRAWDATA:
			o.Data = map[bool]string{true: "unchanged", false: "changed"}[verdict == "keep"]
			if in.errReply != "" {
				o.Data = verdict
			}
			hdr, _, ok := strings.Cut(string(in.payload), "\r\n\r\n")
			if !ok {
				o.Data = "no header end"
			}
			for _, f := range strings.Split(strings.ReplaceAll(hdr, "\r\n\t", "\r\n "), "\r\n") {
				if _, _, err := ParseHeaderField(f); err != nil && !strings.HasPrefix(f, " ") {
					o.Data = "bad header: " + err.Error()
				}
			}
		}
	}
	o.Added = r.added
	o.AddHeaders = r.addHeaders
	o.Advice = r.advice
	return o
}
