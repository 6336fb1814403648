package bridge

import (
	"testing"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestOptMacros(t *testing.T) {
	keys, macros := map[string]bool{}, map[string]bool{}
	for _, km := range optMacros() {
		if km.key == "" || km.macro == "" || keys[km.key] || macros[km.macro] {
			t.Errorf("bad or repeated entry %+v", km)
		}
		keys[km.key], macros[km.macro] = true, true
	}
	for _, k := range []string{ocpsmtp.OptTLSVersion, ocpsmtp.OptTLSCipher, ocpsmtp.OptTLSCipherBits, ocpsmtp.OptAuthType,
		ocpsmtp.OptAuthAuthen, ocpsmtp.OptAuthAuthor, ocpsmtp.OptQueueID, ocpsmtp.OptDaemonName, ocpsmtp.OptClientName} {
		if !keys[k] {
			t.Errorf("optMacros lacks %s", k)
		}
	}
}
