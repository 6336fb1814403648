package builtin

import (
	"fmt"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
)

// NewService returns the built-in service that a [callout.services.NAME]
// entry of the configuration describes.
func NewService(c *mapping.CalloutService) (callout.Service, error) {
	var (
		s   callout.Service
		err error
	)
	switch o := c.Options.(type) {
	case *mapping.RecipientPolicy:
		s, err = NewRecipientPolicy(o)
	case *mapping.SenderRewrite:
		s = NewSenderRewrite(o)
	case *mapping.HeaderTag:
		s, err = NewHeaderTag(o, nil)
	case *mapping.SubjectTag:
		s = NewSubjectTag(o)
	case *mapping.Disclaimer:
		s = NewDisclaimer(o)
	case *mapping.AttachmentFilter:
		s, err = NewAttachmentFilter(o)
	case *mapping.Command:
		s, err = NewCommand(o)
	case *mapping.SizeLimit:
		s, err = NewSizeLimit(o)
	case *mapping.Spamd:
		s, err = NewSpamd(o)
	case *mapping.Rspamd:
		s, err = NewRspamd(o)
	case *mapping.AuthVerify:
		s = NewAuthVerify(o)
	case *mapping.DKIMSign:
		s, err = NewDKIMSign(o)
	case *mapping.Clamd:
		s, err = NewClamd(c.Name, o)
	case *mapping.ICAP:
		s, err = NewICAP(c.Name, o)
	default:
		err = fmt.Errorf("unknown kind %q", c.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("callout: service %s: %w", c.Name, err)
	}
	return s, nil
}

// NewServices returns the services of the configuration by URI, the map
// Server.Services takes.
func NewServices(c *mapping.Callout) (map[string]callout.Service, error) {
	out := make(map[string]callout.Service, len(c.Services))
	for _, sc := range c.Services {
		s, err := NewService(sc)
		if err != nil {
			return nil, err
		}
		out[sc.URI] = s
	}
	return out, nil
}
