package mimetext

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
)

// ErrUnknownEncoding reports a Content-Transfer-Encoding the services do
// not handle.
var ErrUnknownEncoding = errors.New("mimetext: unknown transfer encoding")

// DecodeTransfer decodes a body in the transfer encoding cte (lower case).
// Malformed base64 or quoted-printable is an error, never guessed at.
func DecodeTransfer(cte string, raw []byte) ([]byte, error) {
	switch cte {
	case "7bit", "8bit", "binary":
		return raw, nil
	case "base64":
		clean := make([]byte, 0, len(raw))
		for _, c := range raw {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				clean = append(clean, c)
			}
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("mimetext: base64: %w", err)
		}
		return out[:n], nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return nil, fmt.Errorf("mimetext: quoted-printable: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, cte)
}

// EncodeTransfer encodes data (CRLF line breaks) in cte. Base64 lines
// hold 76 characters; quoted-printable follows mime/quotedprintable.
func EncodeTransfer(cte string, data []byte) ([]byte, error) {
	switch cte {
	case "7bit", "8bit", "binary":
		return data, nil
	case "base64":
		enc := base64.StdEncoding.EncodeToString(data)
		var b bytes.Buffer
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString("\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
		if len(enc) > 0 {
			b.WriteString("\r\n")
		}
		return b.Bytes(), nil
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, cte)
}

// FitsIdentity reports whether data may travel as 7bit or 8bit: lines of at
// most 998 octets, no NUL, no bare CR or LF, and (for 7bit) ASCII only.
func FitsIdentity(data []byte, sevenBit bool) bool {
	lineLen := 0
	for i, c := range data {
		switch {
		case c == '\n':
			if i == 0 || data[i-1] != '\r' {
				return false
			}
			lineLen = 0
			continue
		case c == '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				return false
			}
			continue
		case c == 0, sevenBit && c >= 0x80:
			return false
		}
		lineLen++
		if lineLen > 998 {
			return false
		}
	}
	return true
}
