package callout

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// logDone writes the one line per transaction: the same keys as
// opes-milter's line about the message (qid, ocp_tx, duration), the
// result, the services' reasons (a scanner's verdict and score), and only
// the fields that are known.
func (t *txn) logDone() {
	attrs := []slog.Attr{slog.String("result", t.result)}
	if qid := t.tx.Opt(ocpsmtp.OptQueueID); qid != "" {
		attrs = append(attrs, slog.String("qid", qid))
	}
	if t.tx.Sender.Addr != "" {
		attrs = append(attrs, slog.String("sender", t.tx.Sender.Addr))
	}
	if t.messageID != "" {
		attrs = append(attrs, slog.String("message_id", t.messageID))
	}
	attrs = append(attrs, slog.Int("rcpts", len(t.tx.Recipients)))
	if t.refusedRcpts > 0 {
		attrs = append(attrs, slog.Int("rcpts_refused", t.refusedRcpts))
	}
	if len(t.tx.reasons) > 0 {
		attrs = append(attrs, slog.String("reasons", strings.Join(t.tx.reasons, "; ")))
	}
	attrs = append(attrs, slog.Duration("duration", time.Since(t.tx.Start).Round(time.Millisecond)))
	t.tx.Logger.LogAttrs(context.Background(), slog.LevelInfo, "transaction done", attrs...)
}

// decided returns attrs followed by the service that refused (by its
// configured name: a refusal stops the chain at that service) and the
// reason when it gave one.
func (t *txn) decided(dec Decision, attrs ...any) []any {
	if t.tx.Service != "" {
		attrs = append(attrs, "service", t.s.serviceName(t.tx.Service))
	}
	return t.reason(dec, attrs...)
}

// reason returns attrs followed by the decision's reason when it has one.
func (t *txn) reason(dec Decision, attrs ...any) []any {
	if dec.Reason != "" {
		attrs = append(attrs, "reason", dec.Reason)
	}
	return attrs
}

// maxHeaderScan bounds how much of a message messageID reads.
const maxHeaderScan = 64 << 10

// messageID returns the Message-ID field of the message's header (the
// first one, unfolded and trimmed), reading line by line no further than
// the header and at most 64 KiB: cheaper than parsing the message, which
// a chain that does not look at the content never needs.
func messageID(msg *Message) string {
	br := bufio.NewReaderSize(io.LimitReader(msg.NewReader(), maxHeaderScan), 2048)
	var v []byte
	found := false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer: skip it
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if found {
				break
			}
			continue
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if found {
			if len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t') {
				v = append(v, trimmed...)
				if err == nil {
					continue
				}
			}
			break
		}
		if len(trimmed) == 0 || err != nil {
			return ""
		}
		if name, value, ok := bytes.Cut(trimmed, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Message-ID")) {
			v, found = append(v, value...), true
		}
	}
	return strings.TrimSpace(string(v))
}
