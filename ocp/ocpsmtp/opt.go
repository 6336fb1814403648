package ocpsmtp

import "github.com/opes-milter/opes-milter/ocp"

// Opt is one AM-OPT entry (draft §3.4.3): a keyword and its value, on the
// wire a structure of two anonymous atoms, e.g. {tls-version TLSv1.3}.
type Opt struct {
	Key, Value string
}

// AM-OPT keywords of the profile (docs/profile.md 5.4): what the MTA
// knows about the session. Which milter macro holds each value is the
// processor's business (bridge).
const (
	OptTLSVersion    = "tls-version"     // the TLS protocol version, e.g. TLSv1.3
	OptTLSCipher     = "tls-cipher"      // the TLS cipher
	OptTLSCipherBits = "tls-cipher-bits" // the cipher's key length in bits
	OptAuthType      = "auth-type"       // the SASL mechanism
	OptAuthAuthen    = "auth-authen"     // the SASL login name
	OptAuthAuthor    = "auth-author"     // the AUTH= authorization id
	OptQueueID       = "queue-id"        // the MTA's queue id
	OptDaemonName    = "daemon-name"     // the MTA's name for the listener
	OptClientName    = "client-name"     // the verified client host name
)

func optList(opts []Opt) ocp.List {
	l := make(ocp.List, len(opts))
	for i, o := range opts {
		l[i] = ocp.Struct{Anon: []ocp.Value{ocp.Atom(o.Key), ocp.Atom(o.Value)}}
	}
	return l
}

// parseOpts reads an AM-OPT list: structures whose first two anonymous
// members are atoms (the keyword and its value). Further members are
// ignored as RFC 4037 §11 asks for unknown members.
func parseOpts(v ocp.Value) ([]Opt, error) {
	l, ok := v.(ocp.List)
	if !ok {
		return nil, &ParamError{Name: ParamAMOPT, Reason: "not a list"}
	}
	opts := make([]Opt, 0, len(l))
	for _, e := range l {
		s, ok := e.(ocp.Struct)
		if !ok || len(s.Anon) < 2 {
			return nil, &ParamError{Name: ParamAMOPT, Reason: "entry is not {keyword value}"}
		}
		k, ok1 := atomOf(s.Anon[0])
		val, ok2 := atomOf(s.Anon[1])
		if !ok1 || !ok2 || !isName(k) {
			return nil, &ParamError{Name: ParamAMOPT, Reason: "entry is not {keyword value}"}
		}
		opts = append(opts, Opt{Key: k, Value: val})
	}
	return opts, nil
}
