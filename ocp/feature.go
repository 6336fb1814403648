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
func FeaturesValue(fs []Feature) List {
	l := make(List, len(fs))
	for i, f := range fs {
		l[i] = f.Value()
	}
	return l
}

// ParseFeatures parses a list of features.
func ParseFeatures(v Value) ([]Feature, error) {
	l, ok := v.(List)
	if !ok {
		return nil, badValue("expected a list of features, got %s", kind(v))
	}
	fs := make([]Feature, 0, len(l))
	for _, item := range l {
		f, err := ParseFeature(item)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// ServicesValue returns ss as an OCP list of services.
func ServicesValue(ss []Service) List {
	l := make(List, len(ss))
	for i, s := range ss {
		l[i] = s.Value()
	}
	return l
}

// ParseServices parses a list of services.
func ParseServices(v Value) ([]Service, error) {
	l, ok := v.(List)
	if !ok {
		return nil, badValue("expected a list of services, got %s", kind(v))
	}
	ss := make([]Service, 0, len(l))
	for _, item := range l {
		s, err := ParseService(item)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}
