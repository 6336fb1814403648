package bridge

import "github.com/opes-milter/opes-milter/ocp/ocpsmtp"

// pendingMax bounds the data octets a mail transaction holds back.
const pendingMax = 32 << 10

// pending is message data queued for the callout server but not sent yet.
// The MTA passes a message as many events (the header fields, then body
// chunks) and, because the bridge answers none of them before end of
// message, the server gains nothing from getting each one as it comes.
// Queued data goes out when pendingMax octets are reached, and at end of
// message together with the AME, so that a small message costs the
// server one read instead of one per event. Each chunk stays one DUM, as
// it would be sent at once.
type pending struct {
	buf  []byte
	dums []pendingDUM
}

// pendingDUM is one queued DUM: buf[start:end] of an instance.
type pendingDUM struct {
	part       ocpsmtp.Part
	index      string
	opts       []ocpsmtp.Opt
	start, end int
}

// fits reports whether n more octets may be queued.
func (p *pending) fits(n int) bool { return len(p.buf)+n <= pendingMax }

// add queues b as the next chunk of the instance part/index, taking a
// buffer from bufs when it has none.
func (p *pending) add(bufs *bufPool, part ocpsmtp.Part, index string, opts []ocpsmtp.Opt, b []byte) {
	if p.buf == nil {
		p.buf = bufs.Get()
	}
	start := len(p.buf)
	p.buf = append(p.buf, b...)
	p.dums = append(p.dums, pendingDUM{part: part, index: index, opts: opts, start: start, end: len(p.buf)})
}

// reset forgets what is queued, keeping the buffer.
func (p *pending) reset() {
	p.buf = p.buf[:0]
	p.dums = p.dums[:0]
}

// release gives the buffer back to bufs once the mail transaction ended.
func (p *pending) release(bufs *bufPool) {
	if p.buf != nil {
		bufs.Put(p.buf)
	}
	p.buf, p.dums = nil, nil
}
