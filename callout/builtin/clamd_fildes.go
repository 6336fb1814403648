package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// errFildesConn reports a backend connection that cannot pass a file
// descriptor (not a unix socket).
var errFildesConn = errors.New("clamd: FILDES needs a unix socket")

// fildesCmd is zFILDES and the byte that carries the descriptor, sent in
// one sendmsg: clamd takes the byte after the command as the one the
// descriptor came with ("FILDES command complete").
const fildesCmd = "zFILDES\x00\x00"

// scanFD writes the message into an anonymous in-memory file (memfd) and
// passes its descriptor to clamd with zFILDES (SCM_RIGHTS), as
// clamav-milter does over a local socket: clamd scans the file in place
// instead of receiving a stream and writing it to a temporary file of its
// own. clamd's StreamMaxLength does not apply; its MaxFileSize and
// MaxScanSize do (Heuristics.Limits.Exceeded.* with AlertExceedsMax).
func (c *clamdClient) scanFD(ctx context.Context, r io.Reader) (clamdVerdict, error) {
	fd, err := unix.MemfdCreate("opes-callout-scan", unix.MFD_CLOEXEC)
	if err != nil {
		return clamdVerdict{}, fmt.Errorf("clamd: memfd: %w", err)
	}
	defer unix.Close(fd)
	if err := c.fill(fd, r); err != nil {
		return clamdVerdict{}, err
	}
	conn, err := c.b.Conn(ctx)
	if err != nil {
		return clamdVerdict{}, err
	}
	uc, ok := conn.Conn.(*net.UnixConn)
	if !ok {
		return clamdVerdict{}, conn.Release(false, errFildesConn)
	}
	if _, _, err := uc.WriteMsgUnix([]byte(fildesCmd), syscall.UnixRights(fd), nil); err != nil {
		return clamdVerdict{}, conn.Release(false, err)
	}
	reply, err := readClamdReply(bufio.NewReaderSize(uc, 256))
	if err != nil {
		return clamdVerdict{}, conn.Release(false, err)
	}
	v, err := parseClamdReply(reply)
	if err != nil {
		return clamdVerdict{}, conn.Release(false, err)
	}
	return v, conn.Release(false, nil)
}

// fill copies r into the file fd from offset 0 with pwrite, which leaves
// the file's offset at 0 for clamd.
func (c *clamdClient) fill(fd int, r io.Reader) error {
	buf := c.buf()
	defer c.putBuf(buf)
	var off int64
	for {
		n, err := io.ReadFull(r, *buf)
		for p := (*buf)[:n]; len(p) > 0; {
			k, werr := unix.Pwrite(fd, p, off)
			if werr == unix.EINTR {
				continue
			}
			if werr == nil && k == 0 {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return fmt.Errorf("clamd: write memfd: %w", werr)
			}
			p, off = p[k:], off+int64(k)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return fmt.Errorf("clamd: read message: %w", err)
		}
	}
}
