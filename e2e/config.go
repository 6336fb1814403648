package e2e

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Paths of the administrator snippets the harness builds its configurations from,
// relative to the repository root.
const (
	ContribPostfixMain   = "contrib/postfix/main.cf"
	ContribPostfixMaster = "contrib/postfix/master.cf"
	ContribSendmailMC    = "contrib/sendmail/sendmail.mc"
)

// TestMessageSizeLimit is the message_size_limit (and Sendmail MaxMessageSize) of
// the test instances: 64 MiB, above the 10 MB Postfix default, so large-message
// tests reach the milter.
const TestMessageSizeLimit = 64 << 20

// Test-instance configuration the harness adds to the contrib snippets.
var (
	//go:embed testdata/postfix/main.cf
	postfixBaseMain string
	//go:embed testdata/postfix/master.cf
	postfixBaseMaster string
	//go:embed testdata/sendmail/base.mc
	sendmailBaseMC string
)

// postfixMainCF renders main.cf for an instance in dir: the base, then the contrib
// snippet, then the non-SMTP milter switch and o.Extra (sorted by name). Postfix
// uses the last setting of a parameter, so later parts override earlier ones.
func postfixMainCF(t testing.TB, dir, relayhost string, o PostfixOptions) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(FillTemplate(t, "postfix base main.cf", postfixBaseMain, map[string]string{
		"DIR": dir, "HOSTNAME": o.hostname(), "RELAYHOST": relayhost,
	}))
	fmt.Fprintf(&b, "\n# --- %s ---\n", ContribPostfixMain)
	b.WriteString(FillTemplate(t, ContribPostfixMain, readRepoFile(t, ContribPostfixMain), map[string]string{
		"MILTER":             o.Milter,
		"MESSAGE_SIZE_LIMIT": fmt.Sprint(TestMessageSizeLimit),
	}))
	b.WriteString("\n# --- test options ---\n")
	if !o.NonSMTPMilter {
		b.WriteString("non_smtpd_milters =\n")
	}
	keys := make([]string, 0, len(o.Extra))
	for k := range o.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, o.Extra[k])
	}
	return lastSettingWins(b.String())
}

// lastSettingWins comments out every main.cf setting (with its continuation lines)
// that a later line sets again. Postfix would use the last one anyway, but every
// Postfix process would also log "overriding earlier entry" for each of them.
func lastSettingWins(text string) string {
	lines := strings.SplitAfter(text, "\n")
	seen := map[string]bool{}
	continuation := false // lines[i+1:] up to the next setting continue a setting
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		if line == "" || line[0] == '#' || strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continuation = true
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok {
			continuation = false
			continue
		}
		if seen[name] {
			lines[i] = "#e2e overridden below# " + line
			for j := i + 1; continuation && j < len(lines) && len(lines[j]) > 0 && (lines[j][0] == ' ' || lines[j][0] == '\t'); j++ {
				lines[j] = "#e2e overridden below# " + lines[j]
			}
		}
		seen[name] = true
		continuation = false
	}
	return strings.Join(lines, "")
}

// postfixMasterCF renders master.cf: the internal services and the contrib SMTP and
// submission services on the given loopback addresses, without chroot.
func postfixMasterCF(t testing.TB, smtpAddr, submissionAddr string) string {
	t.Helper()
	return postfixBaseMaster + "\n# --- " + ContribPostfixMaster + " ---\n" +
		FillTemplate(t, ContribPostfixMaster, readRepoFile(t, ContribPostfixMaster), map[string]string{
			"SMTP_SERVICE":       smtpAddr,
			"SUBMISSION_SERVICE": submissionAddr,
			"CHROOT":             "n",
		})
}
