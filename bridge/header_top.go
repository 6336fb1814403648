package bridge

import (
	"errors"
	"strings"
)

// insertTop inserts the Add-Header-At: top fields at index 0 (milter
// SMFIR_INSHEADER), the last received first, so that they end up in the
// order received above every other field, the MTA's own Received included.
func (o *outcome) insertTop(mod Modifier) error {
	var errs []error
	for i := len(o.topHeaders) - 1; i >= 0; i-- {
		h := o.topHeaders[i]
		errs = append(errs, mod.InsertHeader(0, h.name, " "+strings.TrimLeft(h.value, " \t")))
	}
	return errors.Join(errs...)
}
