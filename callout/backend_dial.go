package callout

import (
	"context"
	"net"
)

// Dial opens a connection to the backend without taking a connection
// slot, for a client that manages its own connections (net/http's
// Transport for rspamd, which bounds and reuses them itself). A failure
// is a *BackendError and marks the backend down.
func (b *Backend) Dial(ctx context.Context) (net.Conn, error) {
	c, err := b.dialer.DialContext(ctx, b.network, b.address)
	if err != nil {
		return nil, b.fail(err)
	}
	return c, nil
}

// MaxConns returns the bound on concurrent connections.
func (b *Backend) MaxConns() int { return cap(b.slots) }

// Record records the outcome of an exchange made over connections from
// Dial: nil marks the backend up, an error marks it down and is returned
// as a *BackendError.
func (b *Backend) Record(err error) error {
	if err != nil {
		return b.fail(err)
	}
	b.ok()
	return nil
}
