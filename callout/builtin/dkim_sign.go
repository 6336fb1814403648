package builtin

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// DKIMSign signs outbound mail (kind dkim-sign) with the key its signing
// table gives for the domain of the From address (the nearest listed
// parent domain for a subdomain), relaxed/relaxed, RSA-SHA256 or
// Ed25519-SHA256 after the key's type, over the configured header set.
// The DKIM-Signature field goes to the top of the header. It must be the
// last service of its chain that changes the message (the mapping checks
// the chains); the keys are read when the service is built, so SIGHUP,
// which rebuilds opes-callout's services, loads rotated keys (and keeps the
// old service when a key file is broken).
//
// 8-bit mail: a relay that downgrades 8BITMIME to quoted-printable after
// signing breaks the body hash. Postfix does this only for a next hop
// without 8BITMIME; disable_mime_output_conversion = yes prevents it. The
// service logs a warning when it signs an 8-bit body.
type DKIMSign struct {
	keys    map[string]dkimKey
	headers []string
	expire  time.Duration
}

type dkimKey struct {
	selector string
	signer   crypto.Signer
}

// oversigned are the fields signed once more than they occur, so that
// none can be added after signing (RFC 6376 §8.15).
var oversigned = [...]string{"from", "reply-to", "subject", "date", "to", "cc", "message-id", "mime-version", "content-type"}

// NewDKIMSign reads the keys of o.
func NewDKIMSign(o *mapping.DKIMSign) (*DKIMSign, error) {
	s := &DKIMSign{keys: map[string]dkimKey{}, headers: o.Headers, expire: o.Expire}
	for _, k := range o.Keys {
		signer, err := readDKIMKey(k.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key of %s: %w", k.Domain, err)
		}
		s.keys[strings.ToLower(k.Domain)] = dkimKey{selector: k.Selector, signer: signer}
	}
	return s, nil
}

// readDKIMKey reads a PEM private key: PKCS#8 (RSA or Ed25519) or PKCS#1
// (RSA).
func readDKIMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", path, key)
	}
	return signer, nil
}

// Needs implements Service: RAWDATA is adapted (a field added).
func (s *DKIMSign) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// key returns the key for domain or its nearest listed parent.
func (s *DKIMSign) key(domain string) (string, dkimKey, bool) {
	for d := strings.ToLower(domain); d != ""; {
		if k, ok := s.keys[d]; ok {
			return d, k, true
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(rest, ".") {
			break
		}
		d = rest
	}
	return "", dkimKey{}, false
}

// AdaptMessage implements MessageAdapter.
func (s *DKIMSign) AdaptMessage(_ context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	from, ok := root.Field("From")
	if !ok {
		return callout.Keep().Because("no From field: not signed"), nil
	}
	fromDom, ok := fromDomain(from.Value())
	if !ok {
		return callout.Keep().Because("From field without exactly one address: not signed"), nil
	}
	domain, key, ok := s.key(fromDom)
	if !ok {
		return callout.Keep().Because("no signing key for " + fromDom), nil
	}
	counts := map[string]int{}
	for _, f := range root.Fields {
		counts[strings.ToLower(f.Name)]++
	}
	var keys []string
	for _, h := range s.headers {
		n := counts[strings.ToLower(h)]
		if slices.Contains(oversigned[:], strings.ToLower(h)) {
			n++
		}
		for range n {
			keys = append(keys, h)
		}
	}
	opts := &dkim.SignOptions{Domain: domain, Selector: key.selector, Signer: key.signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: keys}
	if s.expire > 0 {
		opts.Expiration = time.Now().Add(s.expire)
	}
	signer, err := dkim.NewSigner(opts)
	if err != nil {
		return callout.Decision{}, err
	}
	if _, err := io.Copy(signer, msg.NewReader()); err != nil {
		signer.Close()
		return callout.Decision{}, err
	}
	if err := signer.Close(); err != nil {
		return callout.Decision{}, err
	}
	if body, err := msg.Bytes(root.BodyOffset, min(msg.Size(), root.BodyOffset+1<<20)); err == nil && !isASCII(body) {
		tx.Log().Warn("dkim-sign: 8-bit body signed; a relay converting it to 7 bit breaks the signature (Postfix: disable_mime_output_conversion = yes)")
	}
	name, value, ok := strings.Cut(strings.TrimRight(signer.Signature(), "\r\n"), ":")
	if !ok || !strings.EqualFold(name, "DKIM-Signature") {
		return callout.Decision{}, errors.New("dkim-sign: unexpected signature field")
	}
	f := callout.Field{Name: "DKIM-Signature", Value: strings.TrimLeft(value, " "), Top: true}
	return callout.Keep().Because("signed d=" + domain + " s=" + key.selector).WithHeaderField(f), nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
