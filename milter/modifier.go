package milter

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// macros is the bridge.Macros view of a go-milter Modifier.
type macros struct{ m gomilter.Modifier }

// Get returns the macro called name, or "". A long name is also looked
// up with braces toggled, so "daemon_name" finds "{daemon_name}".
func (x macros) Get(name string) string {
	if v, ok := x.m.GetEx(gomilter.MacroName(name)); ok {
		return v
	}
	var alt string
	switch {
	case len(name) > 2 && name[0] == '{' && name[len(name)-1] == '}':
		alt = name[1 : len(name)-1]
	case len(name) > 1 && !strings.HasPrefix(name, "{"):
		alt = "{" + name + "}"
	default:
		return ""
	}
	v, _ := x.m.GetEx(gomilter.MacroName(alt))
	return v
}

// eomModifier is the bridge.Modifier handed to Session.EndOfMessage. It
// serialises writers (the bridge and the keep-alive), keeps REPLBODY
// packets in one run, and refuses use after end of message, when writing
// would break the milter conversation.
type eomModifier struct {
	mu        sync.Mutex
	m         gomilter.Modifier
	leadSpace bool // SMFIP_HDR_LEADSPC negotiated
	done      bool
	replaced  bool
}

var _ bridge.Modifier = (*eomModifier)(nil)

func (e *eomModifier) do(op string, f func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return fmt.Errorf("milter: %s: %w", op, ErrModifierDone)
	}
	err := f()
	if errors.Is(err, gomilter.ErrModificationNotAllowed) || errors.Is(err, gomilter.ErrVersionTooLow) {
		return fmt.Errorf("milter: %s: %w", op, ErrNotNegotiated)
	}
	if err != nil {
		return fmt.Errorf("milter: %s: %w", op, err)
	}
	return nil
}

// finish makes every later call fail with ErrModifierDone.
func (e *eomModifier) finish() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
}

// headerOut undoes what the MTA does to values when SMFIP_HDR_LEADSPC was
// not negotiated: it adds one SP after the colon, so one is removed here.
func (e *eomModifier) headerOut(v string) string {
	if !e.leadSpace && len(v) > 1 && v[0] == ' ' {
		return v[1:]
	}
	return v
}

// AddHeader appends a header field; value is raw (leading space included).
func (e *eomModifier) AddHeader(name, value string) error {
	return e.do("add header", func() error { return e.m.AddHeader(name, e.headerOut(value)) })
}

// InsertHeader inserts a header field at a global index (0 = top). It
// needs SMFIF_ADDHDRS, as libmilter's smfi_insheader does.
func (e *eomModifier) InsertHeader(index int, name, value string) error {
	return e.do("insert header", func() error {
		if e.m.Actions()&gomilter.OptAddHeader == 0 {
			return gomilter.ErrModificationNotAllowed
		}
		return e.m.InsertHeader(index, name, e.headerOut(value))
	})
}

// ChangeHeader changes the index-th (1-based) field called name; an empty
// value deletes it.
func (e *eomModifier) ChangeHeader(index int, name, value string) error {
	return e.do("change header", func() error { return e.m.ChangeHeader(index, name, e.headerOut(value)) })
}

// ReplaceBody sends the new body as one uninterrupted run of REPLBODY
// packets (Postfix refuses interleaving); at most once per message.
func (e *eomModifier) ReplaceBody(r io.Reader) error {
	return e.do("replace body", func() error {
		if e.replaced {
			return ErrBodyReplaced
		}
		e.replaced = true
		return e.m.ReplaceBody(r)
	})
}

// ChangeFrom replaces the envelope sender.
func (e *eomModifier) ChangeFrom(from, args string) error {
	return e.do("change from", func() error { return e.m.ChangeFrom(from, args) })
}

// AddRecipient adds an envelope recipient (with ESMTP args if the MTA
// granted SMFIF_ADDRCPT_PAR).
func (e *eomModifier) AddRecipient(rcpt, args string) error {
	return e.do("add recipient", func() error { return e.m.AddRecipient(rcpt, args) })
}

// DeleteRecipient removes an envelope recipient as the MTA received it.
func (e *eomModifier) DeleteRecipient(rcpt string) error {
	return e.do("delete recipient", func() error { return e.m.DeleteRecipient(rcpt) })
}

// Quarantine asks the MTA to hold the message (Postfix: hold queue).
func (e *eomModifier) Quarantine(reason string) error {
	return e.do("quarantine", func() error { return e.m.Quarantine(reason) })
}

// Progress sends SMFIR_PROGRESS. Below milter protocol 6 there is no such
// packet and it does nothing.
func (e *eomModifier) Progress() error {
	if e.m.Version() < 6 {
		return nil
	}
	return e.do("progress", e.m.Progress)
}
