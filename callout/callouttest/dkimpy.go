package callouttest

import (
	"bytes"
	"os/exec"
	"testing"
)

// dkimpyVerify is a Python program verifying the message on standard
// input with dkimpy (python3-dkim), the public key records given in the
// environment instead of DNS: KEY_<n>=name=record.
const dkimpyVerify = `
import os, sys, dkim
records = {}
for k, v in os.environ.items():
    if k.startswith("DKIMKEY_"):
        name, rec = v.split("=", 1)
        records[name.lower().rstrip(".") + "."] = rec.encode()
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return records.get(name.lower().rstrip(".") + ".")
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = len([l for l in msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if l.lower().startswith(b"dkim-signature:")])
ok = all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)) and n > 0
print("pass" if ok else "fail", n)
sys.exit(0 if ok else 1)
`

// VerifyDKIMPy verifies every DKIM signature of msg with dkimpy, an
// independent verifier, the public keys given as records (DNS name, like
// "sel._domainkey.example.org", to TXT value). It fails the test when
// /usr/bin/python3 lacks the dkim module, and returns dkimpy's verdict.
func VerifyDKIMPy(t testing.TB, msg []byte, records map[string]string) (bool, string) {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", dkimpyVerify)
	cmd.Stdin = bytes.NewReader(msg)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	i := 0
	for name, rec := range records {
		cmd.Env = append(cmd.Env, "DKIMKEY_"+itoa(i)+"="+name+"="+rec)
		i++
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok || bytes.Contains(out, []byte("ModuleNotFoundError")) {
			t.Fatalf("dkimpy: %v\n%s (install python3-dkim and python3-nacl)", err, out)
		}
	}
	return err == nil, string(bytes.TrimSpace(out))
}
