package ocpsmtp

import (
	"bytes"
	"fmt"

	"github.com/opes-milter/opes-milter/ocp"
)

// Step is one message of a golden transcript: sent by the processor or by
// the callout server, decoded, with its exact wire octets.
type Step struct {
	FromServer bool
	Message    *ocp.Message
	Wire       []byte
}

// ParseTranscript reads the golden transcript format of testdata/profile
// (docs/profile.md 16): "#" comment lines (LF-terminated) between
// messages, and "P: " or "S: " followed by one OCP message in canonical
// form (AppendMessage gives back the same octets), CRLF line ends and exact
// sizes.
func ParseTranscript(data []byte) ([]Step, error) {
	var out []Step
	for len(data) > 0 {
		if data[0] == '#' {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return nil, fmt.Errorf("unterminated comment")
			}
			data = data[i+1:]
			continue
		}
		if len(data) < 3 || (string(data[:3]) != "P: " && string(data[:3]) != "S: ") {
			return nil, fmt.Errorf("expected \"P: \", \"S: \" or \"#\" at %q", data[:min(len(data), 20)])
		}
		fromServer := data[0] == 'S'
		rd := bytes.NewReader(data[3:])
		dec := ocp.NewDecoder(rd, ocp.Limits{})
		m, err := dec.Decode()
		if err != nil {
			return nil, fmt.Errorf("after %d messages: %w", len(out), err)
		}
		n := len(data) - 3 - rd.Len() - dec.Buffered()
		wire := data[3 : 3+n]
		if enc := ocp.AppendMessage(nil, m); !bytes.Equal(enc, wire) {
			return nil, fmt.Errorf("message %d not canonical:\n%q\n%q", len(out)+1, wire, enc)
		}
		out = append(out, Step{FromServer: fromServer, Message: m, Wire: wire})
		data = data[3+n:]
	}
	return out, nil
}
