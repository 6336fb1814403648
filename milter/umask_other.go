//go:build !unix

package milter

func withUmask(_ int, fn func() error) error { return fn() }
