package callout

// Record records the outcome of an exchange judged after its connection
// was released (an HTTP answer whose status or body is wrong): nil marks
// the backend up, an error marks it down and is returned as a
// *BackendError.
func (b *Backend) Record(err error) error {
	if err != nil {
		return b.fail(err)
	}
	b.ok()
	return nil
}
