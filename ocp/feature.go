package ocp

// Feature is an OCP feature (RFC 4037 §10.11): a URI identifying it and
// feature-specific named members. An application profile, such as the
// OCP/SMTP receiver profile, is a feature.
type Feature struct {
	URI    string
	Params []Param
}

// Value returns f as an OCP structure {uri members...}.
func (f Feature) Value() Value {
	return Struct{Anon: []Value{Atom(f.URI)}, Named: f.Params}
}

// Param returns the named member called name and whether it is present.
func (f Feature) Param(name string) (Param, bool) {
	return Struct{Named: f.Params}.Member(name)
}

// ParseFeature parses a feature structure. Extra anonymous members are
// ignored, as RFC 4037 §11 asks for unknown parts.
func ParseFeature(v Value) (Feature, error) {
	uri, params, err := parseIDStruct(v, "feature")
	return Feature{URI: uri, Params: params}, err
}

// Service is an OPES service reference (RFC 4037 §10.12): a URI and
// service parameters.
type Service struct {
	URI    string
	Params []Param
}

// Value returns s as an OCP structure {uri params...}.
func (s Service) Value() Value {
	return Struct{Anon: []Value{Atom(s.URI)}, Named: s.Params}
}

// ParseService parses a service structure.
func ParseService(v Value) (Service, error) {
	uri, params, err := parseIDStruct(v, "service")
	return Service{URI: uri, Params: params}, err
}

func parseIDStruct(v Value, what string) (string, []Param, error) {
	s, ok := v.(Struct)
	if !ok || len(s.Anon) == 0 {
		return "", nil, badValue("expected a %s structure, got %s", what, kind(v))
	}
	uri, ok := s.Anon[0].(Atom)
	if !ok {
		return "", nil, badValue("%s id is not an atom", what)
	}
	return string(uri), s.Named, nil
}

// FeaturesValue returns fs as an OCP list of features.
func FeaturesValue(fs []Feature) List { return listValue(fs) }

// ParseFeatures parses a list of features.
func ParseFeatures(v Value) ([]Feature, error) { return parseList(v, "features", ParseFeature) }

// ServicesValue returns ss as an OCP list of services.
func ServicesValue(ss []Service) List { return listValue(ss) }

// ParseServices parses a list of services.
func ParseServices(v Value) ([]Service, error) { return parseList(v, "services", ParseService) }

// listValue returns the wire values of xs as an OCP list.
func listValue[T interface{ Value() Value }](xs []T) List {
	l := make(List, len(xs))
	for i, x := range xs {
		l[i] = x.Value()
	}
	return l
}

// parseList parses a list whose items parse reads; what names the items
// in the error for a value that is not a list.
func parseList[T any](v Value, what string, parse func(Value) (T, error)) ([]T, error) {
	l, ok := v.(List)
	if !ok {
		return nil, badValue("expected a list of %s, got %s", what, kind(v))
	}
	xs := make([]T, 0, len(l))
	for _, item := range l {
		x, err := parse(item)
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	return xs, nil
}
