package milter

import "bytes"

// validateFrame checks the payload of one MTA-to-milter command (milter
// v6, see libmilter's mfdef.h). It returns "" when go-milter can parse the
// command safely, else the reason to refuse it.
func validateFrame(cmd byte, d []byte) string {
	switch cmd {
	case 'O': // OPTNEG: version, actions, protocol
		if len(d) < 12 {
			return "short OPTNEG"
		}
	case 'C': // CONNECT: host NUL family [port address NUL]
		i := bytes.IndexByte(d, 0)
		if i < 0 {
			return "CONNECT host name without NUL"
		}
		rest := d[i+1:]
		if len(rest) == 0 {
			return "CONNECT without address family"
		}
		switch rest[0] {
		case 'U':
		case 'L', '4', '6':
			if len(rest) < 3 {
				return "CONNECT without port"
			}
			if !endsWithNUL(rest[3:]) {
				return "CONNECT address without NUL"
			}
		default:
			return "CONNECT with unknown address family"
		}
	case 'H', 'M', 'R', 'U': // one or more C strings
		if !endsWithNUL(d) {
			return "payload without terminating NUL"
		}
	case 'L': // HEADER: name NUL value NUL
		if !endsWithNUL(d) || bytes.Count(d, []byte{0}) != 2 || d[0] == 0 {
			return "HEADER is not name NUL value NUL"
		}
	case 'D': // MACRO: command code, then name NUL value NUL pairs
		if len(d) == 0 {
			return "MACRO without command code"
		}
		if len(d) > 1 && !endsWithNUL(d[1:]) {
			return "MACRO list without terminating NUL"
		}
	case 'A', 'B', 'E', 'K', 'N', 'Q', 'T':
		// no payload to check (BODY is raw bytes)
	default:
		return "unknown command"
	}
	return ""
}

func endsWithNUL(d []byte) bool { return len(d) > 0 && d[len(d)-1] == 0 }
