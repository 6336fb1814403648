package bridge

import (
	"errors"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// TestServiceFailureClass: the server's TE 400 with Service-Failure is a
// FailService failure, which is not the server's fault; without the
// parameter it stays FailServer.
func TestServiceFailureClass(t *testing.T) {
	withParam := &ocp.TxError{Xid: 1, Result: ocp.Failure("backend clamd: connection refused"), Remote: true,
		Params: []ocp.Param{ocpsmtp.ServiceFailureParam("http://opes-milter.example/services/antivirus")}}
	f := classify(withParam)
	if f.Class != FailService || f.ServerFault() {
		t.Errorf("classify(TE 400 Service-Failure) = %v (server fault %v), want FailService, not the server's", f, f.ServerFault())
	}
	if !errors.Is(f, withParam) {
		t.Errorf("%v does not wrap the TxError", f)
	}
	plain := &ocp.TxError{Xid: 1, Result: ocp.Failure("boom"), Remote: true}
	if f := classify(plain); f.Class != FailServer || !f.ServerFault() {
		t.Errorf("classify(TE 400) = %v, want FailServer", f)
	}
	local := &ocp.TxError{Xid: 1, Result: ocp.Failure("x"), Params: withParam.Params}
	if f := classify(local); f.Class == FailService {
		t.Errorf("our own TE is never a service failure: %v", f)
	}
	if FailService.String() != "service" {
		t.Errorf("FailService.String() = %q", FailService.String())
	}
}
