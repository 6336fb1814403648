// Package mimetext converts MIME text: charsets (RFC 2046, x/text) and
// Content-Transfer-Encodings (RFC 2045). It is shared by the callout
// service API (package callout) and the built-in services.
package mimetext

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
var ErrUnknownCharset = errors.New("mimetext: unknown charset")

// ErrUnrepresentable reports text that the target charset cannot encode.
var ErrUnrepresentable = errors.New("mimetext: text not representable in charset")

// wordDecoder decodes RFC 2047 encoded words in any charset x/text knows.
// It holds no mutable state.
var wordDecoder = &mime.WordDecoder{CharsetReader: CharsetReader}

// DecodeHeader decodes the RFC 2047 encoded words of a header field value
// in any charset x/text knows.
func DecodeHeader(s string) (string, error) { return wordDecoder.DecodeHeader(s) }

// CharsetReader converts r from charset to UTF-8 (mime.WordDecoder's hook).
func CharsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := LookupCharset(charset)
	if err != nil {
		return nil, err
	}
	return transform.NewReader(r, enc.NewDecoder()), nil
}

// LookupCharset finds an encoding by its IANA name first (so that
// "iso-8859-1" is Latin-1, not the WHATWG alias windows-1252), then by its
// WHATWG label.
func LookupCharset(name string) (encoding.Encoding, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return e, nil
	}
	if e, err := htmlindex.Get(name); err == nil && e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownCharset, name)
}

// IsUTF8Compatible reports whether text in the charset may be treated as
// UTF-8 bytes (UTF-8 itself, and ASCII, its subset).
func IsUTF8Compatible(charset string) bool {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// DecodeCharset converts b from charset to UTF-8.
func DecodeCharset(charset string, b []byte) ([]byte, error) {
	if IsUTF8Compatible(charset) {
		return b, nil
	}
	enc, err := LookupCharset(charset)
	if err != nil {
		return nil, err
	}
	out, _, err := transform.Bytes(enc.NewDecoder(), b)
	if err != nil {
		return nil, fmt.Errorf("mimetext: decode %s: %w", charset, err)
	}
	return out, nil
}

// EncodeCharset converts UTF-8 text to charset. It fails with
// ErrUnrepresentable rather than substituting characters.
func EncodeCharset(charset string, s string) ([]byte, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8":
		return []byte(s), nil
	case "us-ascii", "ascii":
		if !IsASCII([]byte(s)) {
			return nil, fmt.Errorf("%w: us-ascii", ErrUnrepresentable)
		}
		return []byte(s), nil
	}
	enc, err := LookupCharset(charset)
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

// IsASCII reports whether b holds only 7-bit bytes.
func IsASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
