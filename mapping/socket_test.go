package mapping

import "testing"

// TestParseSocket is the table of milter socket forms: Postfix's, and
// Sendmail's port@host and local: (as clamav-milter and OpenDKIM take
// them).
func TestParseSocket(t *testing.T) {
	tests := []struct {
		in      string
		network string // "" when ParseSocket must refuse in
		address string
		str     string // String(); "" for in itself
	}{
		{"inet:127.0.0.1:10025", "tcp", "127.0.0.1:10025", ""},
		{"inet:localhost:10025", "tcp", "localhost:10025", ""},
		{"inet:mx.example:25", "tcp", "mx.example:25", ""},
		{"inet:[::1]:10025", "tcp", "[::1]:10025", ""},
		{"inet:0.0.0.0:0", "tcp", "0.0.0.0:0", ""},
		{"inet:10025@127.0.0.1", "tcp", "127.0.0.1:10025", "inet:127.0.0.1:10025"},
		{"inet:8890@localhost", "tcp", "localhost:8890", "inet:localhost:8890"},
		{"inet:10025@[::1]", "tcp", "[::1]:10025", "inet:[::1]:10025"},
		{"inet6:[::1]:10025", "tcp6", "[::1]:10025", ""},
		{"inet6:::1:10025", "tcp6", "[::1]:10025", "inet6:[::1]:10025"},
		{"inet6:10025@[::1]", "tcp6", "[::1]:10025", "inet6:[::1]:10025"},
		{"inet6:10025@::1", "tcp6", "[::1]:10025", "inet6:[::1]:10025"},
		{"unix:/run/opes/milter.sock", "unix", "/run/opes/milter.sock", ""},
		{"local:/run/opes/milter.sock", "unix", "/run/opes/milter.sock", "unix:/run/opes/milter.sock"},
		{"inet:127.0.0.1", "", "", ""},
		{"inet:127.0.0.1:99999", "", "", ""},
		{"inet:127.0.0.1:http", "", "", ""},
		{"inet:99999@127.0.0.1", "", "", ""},
		{"inet:10025@", "", "", ""},
		{"inet::10025", "", "", ""},
		{"inet:[zz::1]:1", "", "", ""},
		{"inet:mx!:1", "", "", ""},
		{"inet6:127.0.0.1:25", "", "", ""},
		{"inet6:localhost:25", "", "", ""},
		{"inet6:25@127.0.0.1", "", "", ""},
		{"unix:", "", "", ""},
		{"unix:/a\x00b", "", "", ""},
		{"/run/milter.sock", "", "", ""},
		{"tcp:127.0.0.1:25", "", "", ""},
	}
	for _, tt := range tests {
		s, err := ParseSocket(tt.in)
		if tt.network == "" {
			if err == nil {
				t.Errorf("ParseSocket(%q) = %+v, want an error", tt.in, s)
			}
			continue
		}
		if err != nil || s.Network != tt.network || s.Address != tt.address {
			t.Errorf("ParseSocket(%q) = %+v, %v; want %s %s", tt.in, s, err, tt.network, tt.address)
			continue
		}
		want := tt.str
		if want == "" {
			want = tt.in
		}
		if s.String() != want {
			t.Errorf("ParseSocket(%q).String() = %q, want %q", tt.in, s.String(), want)
		}
	}
}
