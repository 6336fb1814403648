package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The antivirus scenarios: opes-callout's clamd and icap services against a
// real clamd (and c-icap over it) that the test starts from a database
// holding only the test signature, through real Postfix and Sendmail.

const (
	avChain   = `services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`
	avService = "http://opes-milter.example/services/antivirus"
)

// startAntivirus starts opes-milter and opes-callout with service (the
// name of a service of e2e/testdata/opes/antivirus.toml) first in the
// default chain and onVirus as the finding's outcome.
func startAntivirus(t *testing.T, service, onVirus, clamdSocket, icapURL string) *Opes {
	t.Helper()
	if icapURL == "" {
		icapURL = "icap://" + FreeAddr(t) + "/avscan" // not in the chain
	}
	return StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		if !strings.Contains(cfg, avChain) {
			t.Fatalf("contrib/opes-milter.toml has no line %s", avChain)
		}
		cfg = strings.Replace(cfg, avChain, fmt.Sprintf(
			`services = ["recipient-policy", %q, "header-tag", "disclaimer", "attachment-filter"]`, service), 1)
		return cfg + "\n" + ScenarioFragment(t, "antivirus.toml", map[string]string{
			"CLAMD_SOCKET": clamdSocket, "ICAP_URL": icapURL, "ON_VIRUS": onVirus})
	}})
}

// avSendmail keeps Sendmail delivering at once on a loaded machine: above
// its QueueLA it queues large messages instead (and no queue runner runs in
// the tests), above RefuseLA it refuses connections.
var avSendmail = SendmailOptions{ExtraMC: "define(`confQUEUE_LA', `1000')dnl\ndefine(`confREFUSE_LA', `1000')dnl\n"}

// virusMessage is a message with the test virus as an attachment.
func virusMessage(subject string) []byte {
	return scenarioMessage("sender@example.org", "friend@example.com", subject, "See the attachment.\n",
		attachment{name: "report.bin", contentType: "application/octet-stream", data: []byte(TestVirus)})
}

// noiseMessage is a message whose attachment is n pseudo-random bytes
// (base64 makes the message about 4/3 n).
func noiseMessage(subject string, n int) []byte {
	data := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{1})
	r.Read(data)
	return scenarioMessage("sender@example.org", "friend@example.com", subject, "A large attachment.\n",
		attachment{name: "noise.dat", contentType: "application/octet-stream", data: data})
}

// nestedZip wraps data in depth zip archives, one inside the other.
func nestedZip(t *testing.T, data []byte, depth int) []byte {
	t.Helper()
	name := "report.bin"
	for range depth {
		var b bytes.Buffer
		z := zip.NewWriter(&b)
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		data, name = b.Bytes(), "inner.zip"
	}
	return data
}

// dkimSigned signs raw with a fresh RSA key for example.org (selector
// test) using python3-dkim's dkimsign; the signature is valid for that key.
func dkimSigned(t *testing.T, raw []byte) []byte {
	t.Helper()
	bin := RequirePeer(t, "dkimsign")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.key")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "test", "example.org", keyFile)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimsign: %v: %s", err, stderrOf(err))
	}
	if !bytes.HasPrefix(out, []byte("DKIM-Signature: v=1;")) {
		t.Fatalf("dkimsign wrote no signature:\n%s", out[:min(len(out), 400)])
	}
	return out
}

// checkRefused fails unless d is a 554 5.7.1 naming signature.
func checkRefused(t *testing.T, what string, d Delivery, signature string) {
	t.Helper()
	if d.Data.Code != 554 || !strings.Contains(d.Data.Text, "5.7.1") || !strings.Contains(d.Data.Text, signature) {
		t.Errorf("%s: end of DATA got %+v, want 554 5.7.1 naming %s", what, d, signature)
	}
}

// TestAntivirusClamd: the clamd service in the default chain, finding
// outcome reject, through Postfix and Sendmail: a clean message is
// delivered with the verdict header; the test virus, an attachment nested
// 18 archives deep (MaxRecursion 17), a 12 MiB message (StreamMaxLength
// 10M) and a DKIM-signed message carrying the virus are refused with 554
// 5.7.1 naming what clamd found; a 9 MiB message is scanned and
// delivered. opes-callout's peak RSS stays under 64 MiB.
func TestAntivirusClamd(t *testing.T) {
	clamd, _ := SharedClamd(t)
	op := startAntivirus(t, "antivirus", "reject", clamd.Socket, "")
	mtas := StartMTAs(t, op, PostfixOptions{}, avSendmail)
	clean := scenarioMessage("sender@example.org", "friend@example.com", "Clean", "Nothing to find here.\n",
		attachment{name: "notes.txt", contentType: "text/plain", data: []byte("harmless notes\n")})
	nested := scenarioMessage("sender@example.org", "friend@example.com", "Nested", "Deep inside.\n",
		attachment{name: "deep.zip", contentType: "application/zip", data: nestedZip(t, []byte(TestVirus), 18)})
	large := noiseMessage("Twelve MiB", 9<<20)   // 12.2 MiB with base64
	medium := noiseMessage("Nine MiB", 6600<<10) // 8.9 MiB with base64
	if len(large) < 12<<20 || len(medium) > 9<<20 || len(medium) < 8<<20 {
		t.Fatalf("message sizes %d and %d", len(large), len(medium))
	}
	signed := dkimSigned(t, virusMessage("Signed"))
	send := func(m *MTA, raw []byte) Delivery {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		return Send(ctx, m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, raw)
	}
	for _, m := range mtas {
		t.Run(m.Name, func(t *testing.T) {
			if d := send(m, clean); !d.Accepted() {
				t.Fatalf("clean message refused: %+v", d)
			}
			got := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if v := got.Header.Get("X-Virus-Scanned"); !strings.HasPrefix(v, "clean (ClamAV 1.") {
				t.Errorf("X-Virus-Scanned = %q, want clean (ClamAV version)", v)
			}
			checkRefused(t, "virus", send(m, virusMessage("Infected")), TestVirusName)
			checkRefused(t, "18 archives deep", send(m, nested), "Heuristics.Limits.Exceeded.MaxRecursion")
			checkRefused(t, "12 MiB", send(m, large), "Heuristics.Limits.Exceeded.StreamMaxLength")
			checkRefused(t, "DKIM-signed virus", send(m, signed), TestVirusName)
			if d := send(m, medium); !d.Accepted() {
				t.Fatalf("9 MiB message refused: %+v", d)
			}
			msgs := m.Sink.Wait(t, 2, scenarioTimeout)
			if v := msgs[1].Header.Get("X-Virus-Scanned"); !strings.HasPrefix(v, "clean (ClamAV") {
				t.Errorf("9 MiB message: X-Virus-Scanned = %q", v)
			}
			time.Sleep(200 * time.Millisecond)
			if all, _ := m.Sink.Messages(); len(all) != 2 {
				t.Errorf("%d messages relayed, want the clean and the 9 MiB ones", len(all))
			}
		})
	}
	if hwm := vmHWM(t, op.Callout.Pid()); hwm >= 64<<20 {
		t.Errorf("opes-callout VmHWM %d MiB, want under 64 MiB", hwm>>20)
	} else {
		t.Logf("opes-callout VmHWM %.1f MiB", float64(hwm)/(1<<20))
	}
}

// TestAntivirusICAP: the icap service against c-icap's virus_scan (over
// the test clamd), through Postfix and Sendmail: a clean message is
// delivered with the verdict header naming c-icap's service, the test
// virus is refused naming the threat c-icap reports.
func TestAntivirusICAP(t *testing.T) {
	clamd, cicap := SharedClamd(t)
	op := startAntivirus(t, "icap-antivirus", "reject", clamd.Socket, cicap.URL())
	for _, m := range StartMTAs(t, op, PostfixOptions{}, avSendmail) {
		t.Run(m.Name, func(t *testing.T) {
			clean := scenarioMessage("sender@example.org", "friend@example.com", "Clean", "Nothing to find here.\n",
				attachment{name: "notes.txt", contentType: "text/plain", data: []byte("harmless notes\n")})
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, clean); !d.Accepted() {
				t.Fatalf("clean message refused: %+v", d)
			}
			got := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if v := got.Header.Get("X-Virus-Scanned"); !strings.HasPrefix(v, "clean (C-ICAP/") {
				t.Errorf("X-Virus-Scanned = %q, want clean (C-ICAP/...)", v)
			}
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, virusMessage("Infected"))
			checkRefused(t, "virus through ICAP", d, TestVirusName)
			time.Sleep(200 * time.Millisecond)
			if all, _ := m.Sink.Messages(); len(all) != 1 {
				t.Errorf("%d messages relayed, want the clean one", len(all))
			}
		})
	}
}

// mtaTool runs an MTA's administration command and returns its output,
// failing the test when it fails.
func mtaTool(t *testing.T, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// sendmailTool runs Sendmail's binary with the instance's sendmail.cf in the
// daemon's UTS and mount namespaces (its host name and /dev), as an
// administrator on that host would.
func sendmailTool(t *testing.T, s *Sendmail, args ...string) string {
	t.Helper()
	argv := append([]string{RequirePeer(t, "nsenter"), "-t", fmt.Sprint(s.proc.Pid()), "--uts", "--mount", "--",
		sendmailBinary(SendmailRoot(t)), "-C", filepath.Join(s.Dir, "sendmail.cf")}, args...)
	return mtaTool(t, argv...)
}

// TestAntivirusQuarantine: with on_virus quarantine, the message with the
// test virus is accepted and held by the MTA with the reason in
// X-Quarantine-Reason (logged by opes-callout with the queue id), then
// released with the MTA's own tools and delivered, as the README says:
// Postfix: postqueue -j lists it in the hold queue, postcat -q shows the
// reason, postsuper -H and postqueue -i deliver it (not scanned again).
// Sendmail: sendmail -bp -qQ lists it, sendmail -qQ -qI<id> -Q releases it
// and a queue run sendmail -qI<id> delivers it.
func TestAntivirusQuarantine(t *testing.T) {
	clamd, _ := SharedClamd(t)
	op := startAntivirus(t, "antivirus", "quarantine", clamd.Socket, "")
	const reason = "X-Quarantine-Reason: virus " + TestVirusName + " found by ClamAV"
	for _, m := range StartMTAs(t, op, PostfixOptions{}, avSendmail) {
		t.Run(m.Name, func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, virusMessage("Held"))
			if !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			var id string
			if p := m.Postfix; p != nil {
				var files []string
				if !Eventually(scenarioTimeout, func() bool { files = p.QueueFiles("hold"); return len(files) == 1 }) {
					t.Fatalf("hold queue: %v, want one message", files)
				}
				id = filepath.Base(files[0])
				if j := mtaTool(t, RequirePeer(t, "postqueue"), "-c", p.ConfigDir, "-j"); !strings.Contains(j, `"queue_name": "hold"`) ||
					!strings.Contains(j, `"queue_id": "`+id+`"`) {
					t.Errorf("postqueue -j does not list %s in the hold queue:\n%s", id, j)
				}
				if c := mtaTool(t, RequirePeer(t, "postcat"), "-c", p.ConfigDir, "-h", "-q", id); !strings.Contains(c, reason) {
					t.Errorf("postcat -q %s lacks %q:\n%s", id, reason, c)
				}
				mtaTool(t, RequirePeer(t, "postsuper"), "-c", p.ConfigDir, "-H", id)
				mtaTool(t, RequirePeer(t, "postqueue"), "-c", p.ConfigDir, "-i", id)
			} else {
				s := m.Sendmail
				var files []string
				if !Eventually(scenarioTimeout, func() bool { files = s.QueueFiles("hf"); return len(files) == 1 }) {
					t.Fatalf("quarantined queue files %v (queue: %v), want one hf file", files, s.QueueFiles(""))
				}
				id = strings.TrimPrefix(filepath.Base(files[0]), "hf")
				if hf := readAll(files[0]); !strings.Contains(hf, reason) {
					t.Errorf("the quarantined queue file lacks %q:\n%s", reason, hf)
				}
				if l := sendmailTool(t, s, "-bp", "-qQ"); !strings.Contains(l, id) {
					t.Errorf("sendmail -bp -qQ does not list %s:\n%s", id, l)
				}
				sendmailTool(t, s, "-qQ", "-qI"+id, "-Q")
				if hf := s.QueueFiles("hf"); len(hf) != 0 {
					t.Errorf("still quarantined after the release: %v", hf)
				}
				sendmailTool(t, s, "-qI"+id)
			}
			got := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if !bytes.Contains(got.Raw, []byte(reason)) || !strings.HasPrefix(got.Header.Get("X-Virus-Scanned"), "infected: "+TestVirusName+" (ClamAV") {
				t.Errorf("the released message lacks the quarantine and verdict headers:\n%s", got.Raw[:min(len(got.Raw), 1500)])
			}
			if log := op.Callout.Output(); !strings.Contains(log, "outcome=quarantine") || !strings.Contains(log, "queue_id="+id) {
				t.Errorf("opes-callout logged no quarantine of %s:\n%s", id, log)
			}
			if log := op.Milter.Output(); !strings.Contains(log, "qid="+id) || !strings.Contains(log, "verdict=quarantine") ||
				!strings.Contains(log, `quarantine="quarantined by callout service"`) {
				t.Errorf("opes-milter's line for %s lacks the quarantine:\n%s", id, log)
			}
		})
	}
}

// TestAntivirusClamdDown: clamd stopped mid-run is the clamd service's
// failure: every message gets the chain's failure policy (tempfail, 4xx at
// the end of DATA), none is delivered unscanned and none is lost (each
// stays with its client). More failures than the server set's
// failure_limit do not open opes-milter's circuit breaker for
// opes-callout (a service failure is not the server's): once clamd is
// back, the next message is scanned and delivered at once.
func TestAntivirusClamdDown(t *testing.T) {
	clamd := StartClamd(t)
	op := startAntivirus(t, "antivirus", "reject", clamd.Socket, "")
	mtas := StartMTAs(t, op, PostfixOptions{}, avSendmail)
	msg := func(s string) []byte {
		return scenarioMessage("sender@example.org", "friend@example.com", s, "Scanned or not at all.\n")
	}
	for _, m := range mtas {
		if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, msg("Before")); !d.Accepted() {
			t.Fatalf("%s: refused before clamd stopped: %+v", m.Name, d)
		}
		m.Sink.Wait(t, 1, scenarioTimeout)
	}
	clamd.Stop()
	const n = 6 // more than contrib's failure_limit = 5
	for _, m := range mtas {
		for i := range n {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, msg(fmt.Sprint("Down ", i)))
			if d.Data.Code < 400 || d.Data.Code > 499 {
				t.Errorf("%s: message %d with clamd down got %+v, want a 4xx tempfail", m.Name, i, d)
			}
		}
	}
	clamd.Restart(t)
	for _, m := range mtas {
		if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, msg("After")); !d.Accepted() {
			t.Errorf("%s: refused once clamd was back: %+v (the breaker opened?)", m.Name, d)
		}
		got := m.Sink.Wait(t, 2, scenarioTimeout)
		time.Sleep(200 * time.Millisecond)
		if all, _ := m.Sink.Messages(); len(all) != 2 {
			t.Errorf("%s relayed %d messages, want only the 2 scanned ones", m.Name, len(all))
		}
		for _, c := range got {
			if !strings.HasPrefix(c.Header.Get("X-Virus-Scanned"), "clean (ClamAV") {
				t.Errorf("%s delivered a message without the verdict header:\n%s", m.Name, c.Raw)
			}
		}
		if p := m.Postfix; p != nil {
			if q := p.QueueFiles(); len(q) != 0 {
				t.Errorf("Postfix queued %v: a tempfailed message must stay with the client", q)
			}
		}
	}
	log := op.Milter.Output()
	if strings.Contains(log, "circuit breaker open") {
		t.Errorf("opes-milter opened the circuit breaker for a service failure:\n%s", log)
	}
	if got := strings.Count(log, `route=inbound class=service err=`); got != 2*n {
		t.Errorf("opes-milter logged %d service failures, want %d:\n%s", got, 2*n, log)
	}
}

// TestAntivirusClamdFildes: the explicit transfers against the real
// clamd, through Postfix ("auto", the default, is TestAntivirusClamd's:
// zFILDES for the small messages, zINSTREAM for the 9 and 12 MiB ones):
// with "fildes" every message reaches clamd as a file descriptor, with
// "instream" every message is streamed; either way a clean message is
// delivered with the verdict header and the test virus is refused naming
// it.
func TestAntivirusClamdFildes(t *testing.T) {
	clamd, _ := SharedClamd(t)
	for _, transfer := range []string{"fildes", "instream"} {
		t.Run(transfer, func(t *testing.T) {
			op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
				cfg = strings.Replace(cfg, avChain, `services = ["recipient-policy", "antivirus", "header-tag", "disclaimer", "attachment-filter"]`, 1)
				frag := ScenarioFragment(t, "antivirus.toml", map[string]string{
					"CLAMD_SOCKET": clamd.Socket, "ICAP_URL": "icap://" + FreeAddr(t) + "/avscan", "ON_VIRUS": "reject"})
				frag = strings.Replace(frag, `kind = "clamd"`, "kind = \"clamd\"\ntransfer = \""+transfer+"\"", 1)
				return cfg + "\n" + frag
			}})
			p := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
			clean := scenarioMessage("sender@example.org", "friend@example.com", "Clean", "Nothing to find here.\n")
			if d := Send(t.Context(), p.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, clean); !d.Accepted() {
				t.Fatalf("clean message refused: %+v", d)
			}
			if v := p.Sink.Wait(t, 1, scenarioTimeout)[0].Header.Get("X-Virus-Scanned"); !strings.HasPrefix(v, "clean (ClamAV") {
				t.Errorf("X-Virus-Scanned = %q", v)
			}
			d := Send(t.Context(), p.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, virusMessage("Infected"))
			checkRefused(t, "virus by "+transfer, d, TestVirusName)
		})
	}
}
