package bridge

import "github.com/opes-milter/opes-milter/internal/spool"

// spoolPrefix names the spool files (unlinked as soon as they are
// created; older versions left named ones after a crash).
const spoolPrefix = "opes-milter-spool-"

// Spool holds one stream of message bytes (an original body kept for the
// callout server, or an adapted body on its way back to the MTA): the
// project's one spool, internal/spool. It keeps up to a memory threshold in
// RAM and moves to an unlinked 0600 temporary file beyond it. A write error
// (disk full) is returned to the caller, which applies the failure policy.
type Spool = spool.Spool

// Spool memory taken from a pool (newPooledSpool): a typical message's
// original data fits spoolBufMin; buffers grown beyond spoolBufMax are not
// kept.
const (
	spoolBufMin = 16 << 10
	spoolBufMax = 64 << 10
)

// NewSpool returns an empty spool that moves to a file in dir (os.TempDir
// when empty) once it holds more than threshold bytes.
func NewSpool(dir string, threshold int) *Spool {
	return spool.New(spool.Options{Dir: dir, Threshold: int64(threshold), Prefix: spoolPrefix})
}

// newPooledSpool is NewSpool with its memory taken from bufs and given
// back on Close; nothing may read the spool after Close.
func newPooledSpool(dir string, threshold int, bufs *bufPool) *Spool {
	return spool.New(spool.Options{Dir: dir, Threshold: int64(threshold), Prefix: spoolPrefix, Buffers: bufs})
}

// RemoveStaleSpools deletes spool files a previous run left in dir and
// returns how many it removed.
func RemoveStaleSpools(dir string) (int, error) { return spool.RemoveStale(dir, spoolPrefix) }
