package milter

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/opes-milter/opes-milter/mapping"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "milter.sock")

	// a stale socket file from a dead process is replaced
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	uid, gid := os.Getuid(), os.Getgid()
	ln, err := Listen(mapping.Socket{Network: "unix", Address: path, Mode: 0o640,
		Owner: strconv.Itoa(uid) + ":" + strconv.Itoa(gid)})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o640 {
		t.Errorf("socket mode %v, want socket 0640", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}

	// a live socket is not taken over
	if _, err := Listen(mapping.Socket{Network: "unix", Address: path}); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("Listen on a live socket: %v, want ErrSocketInUse", err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// default mode
	ln, err = Listen(mapping.Socket{Network: "unix", Address: path})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(path); fi.Mode().Perm() != mapping.DefaultSocketMode {
		t.Errorf("default mode %v", fi.Mode().Perm())
	}
	ln.Close()

	// a regular file is never removed
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if _, err := Listen(mapping.Socket{Network: "unix", Address: file}); !errors.Is(err, ErrBadSocket) {
		t.Errorf("Listen on a regular file: %v, want ErrBadSocket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("regular file touched")
	}

	// an unknown owner fails and leaves no socket behind
	if _, err := Listen(mapping.Socket{Network: "unix", Address: path, Owner: "no-such-user-opes"}); err == nil {
		t.Error("unknown owner accepted")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after failed Listen: %v", err)
	}
}

func TestListenTCP(t *testing.T) {
	s, err := mapping.ParseSocket("inet:127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(s)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() || a.Port == 0 {
		t.Errorf("listening on %v", ln.Addr())
	}
}

// TestListenDoesNotFollowSymlinks: while Listen runs, another process
// keeps replacing the socket path with a symlink to a victim file (a
// writable directory); the victim's mode never changes, because the socket
// is created with its mode instead of chmod'ed by path.
func TestListenDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "milter.sock")
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(path)
			os.Symlink(victim, path)
		}
	}()
	for range 300 {
		ln, err := Listen(mapping.Socket{Network: "unix", Address: path, Mode: 0o666})
		if err == nil {
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}
	}
	close(stop)
	<-done
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the victim file's mode became %v through the symlink", fi.Mode().Perm())
	}
}
