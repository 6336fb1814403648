package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Opes is a running opes-milter and opes-callout pair from this tree, on free
// loopback ports, configured from contrib/opes-milter.toml.
type Opes struct {
	Dir         string
	Config      string // the generated configuration file
	MilterAddr  string // 127.0.0.1:PORT of opes-milter
	CalloutAddr string // 127.0.0.1:PORT of opes-callout
	Milter      *Process
	Callout     *Process
}

// OpesOptions configure StartOpes.
type OpesOptions struct {
	// Edit changes the configuration text after the ports were substituted.
	Edit func(config string) string
	// NoCallout starts opes-milter only (a callout server that is down).
	NoCallout bool
	// Local starts opes-milter alone with run -local: the [callout]
	// services run inside it.
	Local bool
}

// PostfixSocket is the milter socket in Postfix syntax.
func (o *Opes) PostfixSocket() string { return "inet:" + o.MilterAddr }

// SendmailSocket is the milter socket in Sendmail syntax (port@host).
func (o *Opes) SendmailSocket() string {
	return fmt.Sprintf("inet:%s@%s", portOf(o.MilterAddr), hostOf(o.MilterAddr))
}

// StartOpes builds both daemons (once per test binary), writes a
// configuration derived from contrib/opes-milter.toml with fresh ports and
// starts them; both are stopped at cleanup and their logs printed when the
// test failed.
func StartOpes(t testing.TB, o OpesOptions) *Opes {
	t.Helper()
	milterBin, calloutBin := BuildBinaries(t)
	dir := t.TempDir()
	op := &Opes{Dir: dir, MilterAddr: FreeAddr(t), CalloutAddr: FreeAddr(t)}
	cfg := readRepoFile(t, "contrib/opes-milter.toml")
	cfg = strings.ReplaceAll(cfg, "inet:127.0.0.1:8890", "inet:"+op.MilterAddr)
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:8891", op.CalloutAddr)
	cfg = strings.ReplaceAll(cfg, `spool_dir = ""`, fmt.Sprintf("spool_dir = %q", dir))
	if o.Edit != nil {
		cfg = o.Edit(cfg)
	}
	op.Config = filepath.Join(dir, "opes-milter.toml")
	if err := os.WriteFile(op.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{milterBin, "run", "-config", op.Config}
	if o.Local {
		argv = append(argv, "-local")
	} else if !o.NoCallout {
		op.Callout = op.StartCallout(t, calloutBin)
	}
	op.Milter = StartProcess(t, "opes-milter", argv, func() bool { return Listening(op.MilterAddr) })
	return op
}

// StartCallout (re)starts opes-callout with the pair's configuration.
func (op *Opes) StartCallout(t testing.TB, calloutBin string) *Process {
	t.Helper()
	if calloutBin == "" {
		_, calloutBin = BuildBinaries(t)
	}
	op.Callout = StartProcess(t, "opes-callout", []string{calloutBin, "run", "-config", op.Config},
		func() bool { return Listening(op.CalloutAddr) })
	return op.Callout
}
