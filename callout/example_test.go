package callout_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Vacation refuses mail to people who are away and tags the rest with
// the number of text parts it holds. It is a complete service.
type Vacation struct {
	Away map[string]bool
}

// Needs: RCPT may be refused, RAWDATA gets a header field.
func (v Vacation) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA}}
}

// AdaptRcpt refuses recipients who are away.
func (v Vacation) AdaptRcpt(_ context.Context, _ *callout.Tx, rcpt callout.Address) (callout.Decision, error) {
	if v.Away[strings.ToLower(rcpt.Addr)] {
		return callout.Refuse(450, "4.2.1 "+rcpt.Addr+" is on vacation, try next week"), nil
	}
	return callout.Keep(), nil
}

// AdaptMessage counts the text parts, reading them through go-message.
func (v Vacation) AdaptMessage(_ context.Context, _ *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	n := 0
	err := msg.Walk(func(s *callout.Section) error {
		if len(s.Parts) > 0 || !strings.HasPrefix(s.MediaType, "text/") {
			return nil
		}
		e, err := s.Entity()
		if err != nil {
			return err
		}
		if b, err := io.ReadAll(e.Body); err == nil && len(b) > 0 {
			n++
		}
		return nil
	})
	if err != nil {
		return callout.Decision{}, err
	}
	return callout.Keep().WithHeader("X-Text-Parts", fmt.Sprint(n)), nil
}

func Example() {
	v := Vacation{Away: map[string]bool{"bob@example.com": true}}
	ctx, tx := context.Background(), &callout.Tx{}

	d, _ := v.AdaptRcpt(ctx, tx, callout.Address{Addr: "Bob@example.com"})
	fmt.Println(d.Action, d.Reply)

	msg := callout.NewMessage([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n"))
	d, _ = v.AdaptMessage(ctx, tx, msg)
	fmt.Println(d.Action, d.Headers[0])

	// Serve it: srv.Serve(listener) answers OPES processors.
	srv := &callout.Server{Services: map[string]callout.Service{"http://example.com/opes/vacation": v}}
	_ = srv
	// Output:
	// refuse 450 4.2.1 Bob@example.com is on vacation, try next week
	// keep X-Text-Parts: 2
}
