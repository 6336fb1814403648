package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// errFildesConn reports a backend connection that cannot pass a file
// descriptor (not a unix socket).
var errFildesConn = errors.New("clamd: FILDES needs a unix socket")

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
	f := os.NewFile(uintptr(fd), "opes-callout-scan")
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return clamdVerdict{}, fmt.Errorf("clamd: copy message: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
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
	if _, err := io.WriteString(uc, "zFILDES\x00"); err != nil {
		return clamdVerdict{}, conn.Release(false, err)
	}
	if _, _, err := uc.WriteMsgUnix([]byte{0}, syscall.UnixRights(fd), nil); err != nil {
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
