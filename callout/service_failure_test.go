package callout_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// backendDown fails every message as a service whose scanner is down.
type backendDown struct{}

func (backendDown) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}
func (backendDown) AdaptMessage(context.Context, *callout.Tx, *callout.Message) (callout.Decision, error) {
	return callout.Decision{}, &callout.BackendError{Backend: "clamd", Err: errors.New("connection refused")}
}

// TestServiceFailure: a service failing with a *callout.BackendError ends
// the transaction with TE 400 and the Service-Failure parameter naming the
// service (docs/profile.md, section 10.1); any other failure has none.
func TestServiceFailure(t *testing.T) {
	srv := &callout.Server{Services: map[string]callout.Service{"urn:av": backendDown{}, "urn:boom": panicky{}}}
	addr := serve(t, srv)
	msg := envelope("Subject: a\r\n\r\nb\r\n", "<a@example.com>")
	x := process(t, addr, ocp.ClientConfig{}, []string{"urn:av"}, receiverOffer, msg)
	if x.End == nil || x.End.Result.Code != 400 {
		t.Fatalf("end %v, want TE 400", x.End)
	}
	if uri, ok := ocpsmtp.ServiceFailure(x.End); !ok || uri != "urn:av" {
		t.Errorf("Service-Failure %q, %v in %+v; want urn:av", uri, ok, x.End)
	}
	x = process(t, addr, ocp.ClientConfig{}, []string{"urn:boom"}, receiverOffer, msg)
	if x.End == nil || x.End.Result.Code != 400 {
		t.Fatalf("end %v, want TE 400", x.End)
	}
	if uri, ok := ocpsmtp.ServiceFailure(x.End); ok {
		t.Errorf("a panic is the server's failure, not a service's: Service-Failure %q", uri)
	}
}
