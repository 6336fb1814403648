package mapping

import (
	"log/slog"
	"reflect"
	"strings"
)

// newRawOptions returns the raw struct of a service kind, nil for an
// unknown kind.
func newRawOptions(k Kind) any {
	switch k {
	case KindRecipientPolicy:
		return new(rawRecipientPolicy)
	case KindSenderRewrite:
		return new(rawSenderRewrite)
	case KindHeaderTag:
		return new(rawHeaderTag)
	case KindSubjectTag:
		return new(rawSubjectTag)
	case KindDisclaimer:
		return new(rawDisclaimer)
	case KindAttachmentFilter:
		return new(rawAttachmentFilter)
	case KindCommand:
		return new(rawCommand)
	case KindSizeLimit:
		return new(rawSizeLimit)
	case KindSpamd:
		return new(rawSpamd)
	case KindRspamd:
		return new(rawRspamd)
	case KindAuthVerify:
		return new(rawAuthVerify)
	case KindDKIMSign:
		return new(rawDKIMSign)
	case KindClamd:
		return new(rawClamd)
	case KindICAP:
		return new(rawICAP)
	}
	return nil
}

func kindList() string {
	return strings.Join(quoteAll([]string{
		string(KindRecipientPolicy), string(KindSenderRewrite), string(KindHeaderTag), string(KindSubjectTag),
		string(KindDisclaimer), string(KindAttachmentFilter), string(KindCommand), string(KindSizeLimit),
		string(KindSpamd), string(KindRspamd), string(KindAuthVerify), string(KindDKIMSign),
		string(KindClamd), string(KindICAP),
	}), ", ")
}

func (b *builder) callout(r *rawCallout) *Callout {
	c := &Callout{
		MetricsListen:    r.MetricsListen,
		Pprof:            r.Pprof,
		MaxProcs:         r.MaxProcs,
		LogLevel:         slog.Level(r.LogLevel),
		LogFormat:        string(r.LogFormat),
		MaxConnections:   r.MaxConnections,
		IdleTimeout:      b.positive("callout.idle_timeout", r.IdleTimeout),
		HandshakeTimeout: b.positive("callout.handshake_timeout", r.HandshakeTimeout),
		DrainTimeout:     b.positive("callout.drain_timeout", r.DrainTimeout),
	}
	if len(r.Listen) == 0 {
		b.errorf(ErrMissing, "callout.listen", "needs at least one address, like %q", DefaultCalloutListen)
	}
	c.Listen = b.hostPorts("callout.listen", "callout.listen", r.Listen, false)
	if r.MetricsListen != "" {
		if _, err := parseHostPort(r.MetricsListen); err != nil {
			b.errorf(ErrValue, "callout.metrics_listen", "%q: %v", r.MetricsListen, err)
		}
	} else if r.Pprof {
		b.errorf(ErrConflict, "callout.pprof", "needs callout.metrics_listen, where the profiles are served")
	}
	b.atLeast("callout.max_connections", r.MaxConnections, 1)
	b.atLeast("callout.max_procs", r.MaxProcs, 0)
	c.TLS = b.tls("callout.tls", r.TLS, true)

	uris := make(map[string]string)
	for _, name := range sortedKeys(r.Services) {
		key := joinPath(joinPath("callout", "services"), name)
		s := b.calloutService(key, name, r.Services[name])
		if s == nil {
			continue
		}
		if other, dup := uris[s.URI]; dup && s.URI != "" {
			b.errorf(ErrConflict, joinPath(key, "uri"), "%q is also the URI of callout.services.%s", s.URI, other)
		}
		uris[s.URI] = name
		c.Services = append(c.Services, s)
	}
	return c
}

// calloutService decodes one service table into the raw struct of its
// kind, then compiles that kind's options.
func (b *builder) calloutService(key, name string, table map[string]any) *CalloutService {
	k, ok := table["kind"].(string)
	if !ok {
		if _, present := table["kind"]; present {
			b.errorf(ErrType, joinPath(key, "kind"), "expected a string, got %s", tomlType(table["kind"]))
		} else {
			b.errorf(ErrMissing, joinPath(key, "kind"), "required: one of %s", kindList())
		}
		return nil
	}
	raw := newRawOptions(Kind(k))
	if raw == nil {
		b.errorf(ErrValue, joinPath(key, "kind"), "unknown kind %q (want one of %s)", k, kindList())
		return nil
	}
	rv := reflect.ValueOf(raw).Elem()
	setDefaults(rv)
	(&decoder{b.errs}).table(key, table, rv)
	head := raw.(interface{ serviceHead() *rawServiceHead }).serviceHead()
	s := &CalloutService{Name: name, URI: head.URI, Kind: Kind(k)}
	if head.URI == "" {
		b.errorf(ErrMissing, joinPath(key, "uri"), "required: the service ID processors name in SGC")
	} else {
		b.uri(joinPath(key, "uri"), head.URI)
	}
	s.Options = (&optionsBuilder{builder: b, key: key}).options(raw)
	return s
}

// options compiles the raw options of any kind.
func (o *optionsBuilder) options(raw any) Options {
	switch r := raw.(type) {
	case *rawRecipientPolicy:
		return o.recipientPolicy(r)
	case *rawSenderRewrite:
		return o.senderRewrite(r)
	case *rawHeaderTag:
		return o.headerTag(r)
	case *rawSubjectTag:
		return o.subjectTag(r)
	case *rawDisclaimer:
		return o.disclaimer(r)
	case *rawAttachmentFilter:
		return o.attachmentFilter(r)
	case *rawCommand:
		return o.command(r)
	case *rawSizeLimit:
		return o.sizeLimit(r)
	case *rawSpamd:
		return o.spamd(r)
	case *rawRspamd:
		return o.rspamd(r)
	case *rawAuthVerify:
		return o.authVerify(r)
	case *rawDKIMSign:
		return o.dkimSign(r)
	case *rawClamd:
		return o.clamd(r)
	case *rawICAP:
		return o.icap(r)
	}
	return nil
}
