package builtin

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestAttachmentFilter(t *testing.T) {
	exe := mapping.AttachmentFilter{Extensions: []string{".exe", ".scr"}, Signed: SignedPass}
	tests := []struct {
		name string
		file string
		opts mapping.AttachmentFilter
		// action is the expected decision; removed and replaced list the
		// parts acted on (paths in the original message).
		action            callout.Action
		removed, replaced [][]int
		code              int
	}{
		{name: "remove exe", file: "attachments.eml", opts: with(exe, AttachmentRemove),
			action: callout.ActionReplace, removed: [][]int{{1}}},
		{name: "replace exe", file: "attachments.eml", opts: with(exe, AttachmentReplace),
			action: callout.ActionReplace, replaced: [][]int{{1}}},
		{name: "reject exe", file: "attachments.eml", opts: with(exe, AttachmentReject),
			action: callout.ActionRefuse, code: 554},
		{name: "remove by type and size", file: "attachments.eml",
			opts: mapping.AttachmentFilter{ContentTypes: []string{"application/zip", "image/*"}, MaxSize: 30000,
				Action: AttachmentRemove, Signed: SignedPass},
			action: callout.ActionReplace, removed: [][]int{{2}, {3}, {4}}},
		{name: "extension case and RFC 2231 name", file: "attachments.eml",
			opts:   mapping.AttachmentFilter{Extensions: []string{".jpg", ".docm"}, Action: AttachmentReplace, Signed: SignedPass},
			action: callout.ActionReplace, replaced: [][]int{{4}, {5}}},
		{name: "inside a forwarded message", file: "forwarded.eml", opts: with(exe, AttachmentRemove),
			action: callout.ActionReplace, removed: [][]int{{1, 0, 1}}},
		{name: "signed, pass", file: "signed.eml", opts: with(exe, AttachmentRemove), action: callout.ActionKeep},
		{name: "signed, reject", file: "signed.eml",
			opts:   mapping.AttachmentFilter{Extensions: []string{".exe"}, Action: AttachmentRemove, Signed: SignedReject},
			action: callout.ActionRefuse, code: 554},
		{name: "signature part is not an attachment to filter", file: "signed.eml",
			opts:   mapping.AttachmentFilter{ContentTypes: []string{"application/*"}, Action: AttachmentRemove, Signed: SignedReject},
			action: callout.ActionRefuse, code: 554}, // setup.exe matches application/*; smime.p7s alone would not
		{name: "encrypted payload untouched", file: "pgp-encrypted.eml",
			opts:   mapping.AttachmentFilter{ContentTypes: []string{"application/*"}, Action: AttachmentRemove, Signed: SignedReject},
			action: callout.ActionKeep},
		{name: "malformed MIME", file: "malformed.eml", opts: with(exe, AttachmentRemove),
			action: callout.ActionReplace, removed: [][]int{{1}}},
		{name: "no match", file: "nested.eml", opts: with(exe, AttachmentRemove), action: callout.ActionKeep},
		{name: "inline image, text parts are not attachments", file: "nested.eml",
			opts:   mapping.AttachmentFilter{ContentTypes: []string{"text/*", "image/*"}, Action: AttachmentRemove, Signed: SignedPass},
			action: callout.ActionReplace, removed: [][]int{{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			f, err := NewAttachmentFilter(&opts)
			if err != nil {
				t.Fatal(err)
			}
			orig := sample(t, tt.file)
			d, err := f.AdaptMessage(context.Background(), &callout.Tx{}, orig)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != tt.action {
				t.Fatalf("action %v, want %v (%s)", d.Action, tt.action, d.Reason)
			}
			switch d.Action {
			case callout.ActionRefuse:
				if d.Reply.Code != tt.code {
					t.Errorf("reply %v, want code %d", d.Reply, tt.code)
				}
				return
			case callout.ActionKeep:
				return
			}
			got := d.Message
			defer got.Close()
			// Removal: the result is the original minus exactly those
			// parts (with their delimiter lines), byte for byte.
			var want []byte
			if len(tt.removed) > 0 {
				want = cut(t, orig, tt.removed...)
			} else {
				want = all(t, orig)
			}
			if len(tt.replaced) == 0 {
				mustEqualBytes(t, "message", all(t, got), want)
				return
			}
			// Replacement: everything but the replaced parts is identical,
			// and each became a text/plain notice naming the file.
			mustEqualBytes(t, "bytes outside replaced parts", skeleton(t, got, tt.replaced...), skeleton(t, callout.NewMessage(want), tt.replaced...))
			for _, p := range tt.replaced {
				s := section(t, got, p...)
				if s.MediaType != "text/plain" {
					t.Errorf("part %v: %s, want text/plain", p, s.MediaType)
				}
				old := section(t, orig, p...)
				if txt := decodedText(t, got, s); !strings.Contains(txt, old.Filename()) || !strings.Contains(txt, "removed") {
					t.Errorf("part %v: notice %q does not name %q", p, txt, old.Filename())
				}
			}
		})
	}
}

func with(o mapping.AttachmentFilter, action string) mapping.AttachmentFilter {
	o.Action = action
	return o
}

func TestAttachmentFilterRootAttachment(t *testing.T) {
	msg := callout.NewMessage([]byte("From: a@example.org\r\nSubject: bin\r\nContent-Type: application/octet-stream; name=x.exe\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"))
	f, err := NewAttachmentFilter(&mapping.AttachmentFilter{Extensions: []string{".exe"}, Action: AttachmentRemove, Signed: SignedPass})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.AdaptMessage(context.Background(), &callout.Tx{}, msg)
	if err != nil || d.Action != callout.ActionReplace {
		t.Fatalf("%v %v", d.Action, err)
	}
	got := string(all(t, d.Message))
	want := "From: a@example.org\r\nSubject: bin\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\n" +
		"The attachment \"x.exe\" (application/octet-stream, 12 bytes) was removed by the mail filter.\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestAttachmentFilterOnlyPart(t *testing.T) {
	// Removing the only part would leave an empty multipart: it is
	// replaced instead.
	msg := callout.NewMessage([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\n" +
		"Content-Type: application/x-msdownload; name=a.exe\r\n\r\nMZ\r\n--b--\r\nepilogue\r\n"))
	f, err := NewAttachmentFilter(&mapping.AttachmentFilter{Extensions: []string{".exe"}, Action: AttachmentRemove, Signed: SignedPass})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.AdaptMessage(context.Background(), &callout.Tx{}, msg)
	if err != nil || d.Action != callout.ActionReplace {
		t.Fatalf("%v %v", d.Action, err)
	}
	mustEqualBytes(t, "message", skeleton(t, d.Message, []int{0}), skeleton(t, msg, []int{0}))
	if s := section(t, d.Message, 0); s.MediaType != "text/plain" {
		t.Errorf("part is %s", s.MediaType)
	}
}

func TestAttachmentFilterConfig(t *testing.T) {
	for _, o := range []mapping.AttachmentFilter{
		{Action: "drop", Signed: SignedPass},
		{Action: AttachmentRemove, Signed: "strip"},
		{Action: AttachmentReject, Signed: SignedPass, Reply: ocpsmtp.Reply{Code: 250, Text: "ok"}},
	} {
		if _, err := NewAttachmentFilter(&o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// bypassMessages are the two messages that carried an .exe past the filter
// (issue 17 item 1), and the same shapes just within the parser's limits.
func bypassMessages() map[string][]byte {
	exePart := "Content-Type: application/octet-stream; name=\"evil.exe\"\r\nContent-Disposition: attachment; filename=\"evil.exe\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("X-Filler-" + strings.Repeat("a", i%7) + ": " + strings.Repeat("f", 10) + "\r\n")
		}
		return b.String()
	}
	manyFields := func(n int) []byte {
		return []byte("From: a@example.org\r\nSubject: fields\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n" +
			"--b0\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b0\r\n" + fields(n) + exePart + "--b0--\r\n")
	}
	nested := func(depth int) []byte {
		var b strings.Builder
		b.WriteString("From: a@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n")
		for i := range depth {
			b.WriteString("Content-Type: multipart/mixed; boundary=\"b" + strconv.Itoa(i) + "\"\r\n\r\n--b" + strconv.Itoa(i) + "\r\n")
		}
		b.WriteString(exePart)
		for i := depth - 1; i >= 0; i-- {
			b.WriteString("--b" + strconv.Itoa(i) + "--\r\n")
		}
		return []byte(b.String())
	}
	return map[string][]byte{
		"1000 header fields before Content-Type": manyFields(1000),
		"40 levels of nesting":                   nested(40),
		"990 header fields":                      manyFields(990),
		"20 levels of nesting":                   nested(20),
	}
}

// TestAttachmentFilterFailsClosed: a message the filter cannot read to the
// end (a parser limit) gets the configured unparsable outcome (reject by
// default, quarantine, or a failure for the processor's failure policy),
// never a pass; within the limits the .exe is removed as usual.
func TestAttachmentFilterFailsClosed(t *testing.T) {
	for name, raw := range bypassMessages() {
		within := strings.HasPrefix(name, "990") || strings.HasPrefix(name, "20 ")
		for _, policy := range []string{"", UnparsableReject, UnparsableQuarantine, UnparsableFail} {
			t.Run(name+"/"+policy, func(t *testing.T) {
				f, err := NewAttachmentFilter(&mapping.AttachmentFilter{Extensions: []string{".exe"}, Action: AttachmentRemove,
					Signed: SignedPass, Unparsable: policy})
				if err != nil {
					t.Fatal(err)
				}
				d, err := f.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage(raw))
				switch {
				case within:
					if err != nil || d.Action != callout.ActionReplace {
						t.Fatalf("within the limits: %v %v (%s), want the .exe removed", d.Action, err, d.Reason)
					}
					if got := all(t, d.Message); strings.Contains(string(got), "TVqQAAMAAAAEAAAA") {
						t.Errorf("the .exe is still there")
					}
				case policy == UnparsableFail:
					if !errors.Is(err, ErrUnparsable) {
						t.Fatalf("decision %v, err %v; want ErrUnparsable", d.Action, err)
					}
				case policy == UnparsableQuarantine:
					if err != nil || d.Action != callout.ActionKeep || d.Advice != ocpsmtp.AdviceQuarantine {
						t.Fatalf("decision %v advice %q err %v; want keep with Advice Quarantine", d.Action, d.Advice, err)
					}
				default:
					if err != nil || d.Action != callout.ActionRefuse || d.Reply.Code != 554 {
						t.Fatalf("decision %v %v err %v; want the refusal", d.Action, d.Reply, err)
					}
				}
			})
		}
	}
}
