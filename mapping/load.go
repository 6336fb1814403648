package mapping

import (
	"fmt"
	"io"
)

// maxFileSize bounds the configuration file.
const maxFileSize = 4 << 20

// LoadFile reads, validates and compiles the configuration file at path.
// The error lists every problem found, each an *Error, sorted by line.
func LoadFile(path string) (*Config, error) {
	f, err := openConfig(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: fmt.Sprintf("not a regular file (%s)", fi.Mode().Type()), Err: ErrValue}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize), Err: ErrValue}
	}
	return Load(path, data)
}

// Load validates and compiles a configuration read from the file called
// name (used in error messages).
func Load(name string, data []byte) (*Config, error) {
	return load(name, data)
}

// Check loads the file at path and, when it is valid, prints the compiled
// configuration to w (the "check" subcommand). The error is LoadFile's.
func Check(w io.Writer, path string) error {
	c, err := LoadFile(path)
	if err != nil {
		return err
	}
	return c.Format(w)
}
