package callout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

// ErrUnknownCharset reports a charset the service cannot convert.
var ErrUnknownCharset = errors.New("callout: unknown charset")

// ErrUnrepresentable reports text that the target charset cannot encode.
var ErrUnrepresentable = errors.New("callout: text not representable in charset")

// wordDecoder decodes RFC 2047 encoded words in any charset x/text knows.
// It holds no mutable state.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := lookupCharset(charset)
	if err != nil {
		return nil, err
	}
	return transform.NewReader(r, enc.NewDecoder()), nil
}

// lookupCharset finds an encoding by its IANA name first (so that
// "iso-8859-1" is Latin-1, not the WHATWG alias windows-1252), then by its
// WHATWG label.
func lookupCharset(name string) (encoding.Encoding, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return e, nil
	}
	if e, err := htmlindex.Get(name); err == nil && e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownCharset, name)
}

// isUTF8Compatible reports whether text in the charset may be treated as
// UTF-8 bytes (UTF-8 itself, and ASCII, its subset).
func isUTF8Compatible(charset string) bool {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// decodeCharset converts b from charset to UTF-8.
func decodeCharset(charset string, b []byte) ([]byte, error) {
	if isUTF8Compatible(charset) {
		return b, nil
	}
	enc, err := lookupCharset(charset)
	if err != nil {
		return nil, err
	}
	out, _, err := transform.Bytes(enc.NewDecoder(), b)
	if err != nil {
		return nil, fmt.Errorf("callout: decode %s: %w", charset, err)
	}
	return out, nil
}

// encodeCharset converts UTF-8 text to charset. It fails with
// ErrUnrepresentable rather than substituting characters.
func encodeCharset(charset string, s string) ([]byte, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8":
		return []byte(s), nil
	case "us-ascii", "ascii":
		if !isASCII([]byte(s)) {
			return nil, fmt.Errorf("%w: us-ascii", ErrUnrepresentable)
		}
		return []byte(s), nil
	}
	enc, err := lookupCharset(charset)
	if err != nil {
		return nil, err
	}
	out, _, err := transform.Bytes(enc.NewEncoder(), []byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnrepresentable, charset, err)
	}
	// Make sure the round trip is exact (some encoders substitute).
	back, _, err := transform.Bytes(enc.NewDecoder(), out)
	if err != nil || !bytes.Equal(back, []byte(s)) {
		return nil, fmt.Errorf("%w: %s", ErrUnrepresentable, charset)
	}
	return out, nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
