package callout

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrOverlappingEdits reports edits whose ranges overlap or lie outside
// the message.
var ErrOverlappingEdits = errors.New("callout: overlapping or out-of-range edits")

// Edit replaces the bytes [Offset, End) of a message with Data. An edit
// with Offset == End inserts; one with empty Data deletes.
type Edit struct {
	Offset, End int64
	Data        []byte
}

// Splice returns a new message: m's bytes with the edits applied, every
// byte outside the edited ranges copied unchanged. Edits may come in any
// order but must not overlap (insertions at the same offset are applied
// in the order given). m stays valid.
func (m *Message) Splice(edits ...Edit) (*Message, error) {
	sorted := slices.Clone(edits)
	slices.SortStableFunc(sorted, func(a, b Edit) int {
		switch {
		case a.Offset != b.Offset:
			return cmpInt64(a.Offset, b.Offset)
		default:
			return cmpInt64(a.End, b.End)
		}
	})
	var pos int64
	for _, e := range sorted {
		if e.Offset < pos || e.End < e.Offset || e.End > m.size {
			return nil, fmt.Errorf("%w: [%d,%d) in %d bytes", ErrOverlappingEdits, e.Offset, e.End, m.size)
		}
		pos = e.End
	}
	sp := m.NewSpool()
	pos = 0
	for _, e := range sorted {
		if _, err := io.Copy(sp, m.Range(pos, e.Offset)); err != nil {
			sp.Discard()
			return nil, err
		}
		if _, err := sp.Write(e.Data); err != nil {
			sp.Discard()
			return nil, err
		}
		pos = e.End
	}
	if _, err := io.Copy(sp, m.Range(pos, m.size)); err != nil {
		sp.Discard()
		return nil, err
	}
	return sp.Message()
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
