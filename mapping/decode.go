package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// The toml parser turns the file into maps, slices and scalars; decoder
// turns those into the raw* structs of raw.go. Doing it here rather than
// with toml's own struct decoding gives every problem its full key path
// (with array indices) and reports all of them, not only the first.

// valueDecoder is implemented by raw types that convert a TOML value
// themselves (durations, sizes, enumerations).
type valueDecoder interface {
	decodeTOML(v any) error
}

// defaulter is implemented by raw structs that have defaults. The decoder
// sets them before decoding a table, so keys absent from it keep them.
type defaulter interface {
	setDefaults()
}

// typeError is a value of the wrong TOML type.
type typeError struct {
	want string
	got  any
}

func (e *typeError) Error() string {
	return fmt.Sprintf("expected %s, got %s", e.want, tomlType(e.got))
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

type decoder struct {
	errs *errList
}

// decode stores the TOML value in into out, reporting problems at path.
func (d *decoder) decode(path string, in any, out reflect.Value) {
	if out.CanAddr() && out.Addr().CanInterface() {
		if vd, ok := out.Addr().Interface().(valueDecoder); ok {
			if err := vd.decodeTOML(in); err != nil {
				class := ErrValue
				if isTypeError(err) {
					class = ErrType
				}
				d.errs.add(class, path, "%v", err)
			}
			return
		}
	}
	switch out.Kind() {
	case reflect.Pointer:
		v := reflect.New(out.Type().Elem())
		setDefaults(v.Elem())
		d.decode(path, in, v.Elem())
		out.Set(v)
	case reflect.Struct:
		d.table(path, in, out)
	case reflect.Map:
		m, ok := in.(map[string]any)
		if !ok {
			d.errs.add(ErrType, path, "%v", &typeError{"a table", in})
			return
		}
		if out.IsNil() {
			out.Set(reflect.MakeMapWithSize(out.Type(), len(m)))
		}
		elemIsTable := isTableType(out.Type().Elem())
		for _, k := range sortedKeys(m) {
			if _, ok := m[k].(map[string]any); elemIsTable && !ok {
				// Leave the entry out: it would otherwise be checked
				// as an empty table and fail once more.
				d.errs.add(ErrType, joinPath(path, k), "%v", &typeError{"a table", m[k]})
				continue
			}
			v := reflect.New(out.Type().Elem()).Elem()
			setDefaults(v)
			d.decode(joinPath(path, k), m[k], v)
			out.SetMapIndex(reflect.ValueOf(k), v)
		}
	case reflect.Slice:
		list, ok := asList(in)
		if !ok {
			d.errs.add(ErrType, path, "%v", &typeError{"an array", in})
			return
		}
		out.Set(reflect.MakeSlice(out.Type(), len(list), len(list)))
		for i, v := range list {
			setDefaults(out.Index(i))
			d.decode(indexPath(path, i), v, out.Index(i))
		}
	case reflect.String:
		if s, ok := in.(string); ok {
			out.SetString(s)
		} else {
			d.errs.add(ErrType, path, "%v", &typeError{"a string", in})
		}
	case reflect.Bool:
		if b, ok := in.(bool); ok {
			out.SetBool(b)
		} else {
			d.errs.add(ErrType, path, "%v", &typeError{"a boolean (true or false)", in})
		}
	case reflect.Int, reflect.Int64:
		if n, ok := in.(int64); ok {
			out.SetInt(n)
		} else {
			d.errs.add(ErrType, path, "%v", &typeError{"an integer", in})
		}
	case reflect.Interface:
		if in != nil {
			out.Set(reflect.ValueOf(in))
		}
	default:
		panic("mapping: cannot decode into " + out.Type().String())
	}
}

// isTableType reports whether values of type t are decoded from tables.
func isTableType(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct || t.Kind() == reflect.Map
}

// table decodes a TOML table into a struct, refusing unknown keys.
func (d *decoder) table(path string, in any, out reflect.Value) {
	m, ok := in.(map[string]any)
	if !ok {
		d.errs.add(ErrType, path, "%v", &typeError{"a table", in})
		return
	}
	fields := tomlFields(out.Type())
	for _, k := range sortedKeys(m) {
		idx, ok := fields[k]
		if !ok {
			d.errs.add(ErrUnknownKey, joinPath(path, k), "unknown key%s", suggest(k, fields))
			continue
		}
		d.decode(joinPath(path, k), m[k], out.FieldByIndex(idx))
	}
}

// tomlFields maps the toml tag names of a struct's fields, including those
// of embedded structs, to field indices.
func tomlFields(t reflect.Type) map[string][]int {
	fields := make(map[string][]int)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for name, idx := range tomlFields(f.Type) {
				fields[name] = append([]int{i}, idx...)
			}
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name != "" && name != "-" {
			fields[name] = []int{i}
		}
	}
	return fields
}

// setDefaults applies the defaults of a struct value and of the structs
// it contains, inner ones first so an outer default can override them.
func setDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		setDefaults(v.Field(i))
	}
	if v.CanAddr() && v.Addr().CanInterface() {
		if d, ok := v.Addr().Interface().(defaulter); ok {
			d.setDefaults()
		}
	}
}

func asList(in any) ([]any, bool) {
	switch v := in.(type) {
	case []any:
		return v, true
	case []map[string]any:
		list := make([]any, len(v))
		for i, m := range v {
			list[i] = m
		}
		return list, true
	}
	return nil, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isTypeError reports whether err is about the TOML type of a value.
func isTypeError(err error) bool {
	var te *typeError
	return errors.As(err, &te)
}
