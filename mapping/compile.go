package mapping

import "errors"

func load(name string, data []byte) (*Config, error) {
	return nil, &Error{File: name, Msg: "loader not written yet", Err: errors.ErrUnsupported}
}
