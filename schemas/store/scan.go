package store

import (
	"fmt"
	"math"
	"reflect"
	"time"
)

// assign stores a canonical value (see values.go) into dest, a pointer.
// Integers convert between widths and signedness when the value fits; NULL
// becomes the zero value, as ClickHouse itself does outside Nullable.
func assign(dest, src any) error {
	switch d := dest.(type) {
	case *any:
		*d = src
		return nil
	case *string:
		switch s := src.(type) {
		case string:
			*d = s
		case nil:
			*d = ""
		default:
			return scanErr(src, dest)
		}
		return nil
	case *[]byte:
		switch s := src.(type) {
		case string:
			*d = []byte(s)
		case nil:
			*d = nil
		default:
			return scanErr(src, dest)
		}
		return nil
	case *time.Time:
		switch s := src.(type) {
		case time.Time:
			*d = s.UTC()
		case nil:
			*d = time.Time{}
		default:
			return scanErr(src, dest)
		}
		return nil
	case *[]string:
		switch s := src.(type) {
		case []string:
			*d = s
		case nil:
			*d = nil
		default:
			return scanErr(src, dest)
		}
		return nil
	case *bool:
		switch s := src.(type) {
		case bool:
			*d = s
			return nil
		case nil:
			*d = false
			return nil
		}
		rv := reflect.ValueOf(src)
		switch {
		case rv.CanUint():
			*d = rv.Uint() != 0
		case rv.CanInt():
			*d = rv.Int() != 0
		default:
			return scanErr(src, dest)
		}
		return nil
	case *float64:
		f, ok := toFloat(src)
		if !ok {
			return scanErr(src, dest)
		}
		*d = f
		return nil
	case *float32:
		f, ok := toFloat(src)
		if !ok {
			return scanErr(src, dest)
		}
		*d = float32(f)
		return nil
	}
	dv := reflect.ValueOf(dest)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("scan destination %T is not a non-nil pointer", dest)
	}
	el := dv.Elem()
	if src == nil {
		el.SetZero()
		return nil
	}
	sv := reflect.ValueOf(src)
	switch {
	case el.CanInt():
		var i int64
		switch {
		case sv.CanInt():
			i = sv.Int()
		case sv.CanUint():
			if sv.Uint() > math.MaxInt64 {
				return rangeErr(src, dest)
			}
			i = int64(sv.Uint())
		case sv.Kind() == reflect.Bool:
			if sv.Bool() {
				i = 1
			}
		default:
			return scanErr(src, dest)
		}
		if el.OverflowInt(i) {
			return rangeErr(src, dest)
		}
		el.SetInt(i)
		return nil
	case el.CanUint():
		var u uint64
		switch {
		case sv.CanUint():
			u = sv.Uint()
		case sv.CanInt():
			if sv.Int() < 0 {
				return rangeErr(src, dest)
			}
			u = uint64(sv.Int())
		case sv.Kind() == reflect.Bool:
			if sv.Bool() {
				u = 1
			}
		default:
			return scanErr(src, dest)
		}
		if el.OverflowUint(u) {
			return rangeErr(src, dest)
		}
		el.SetUint(u)
		return nil
	}
	if sv.Type().AssignableTo(el.Type()) {
		el.Set(sv)
		return nil
	}
	return scanErr(src, dest)
}

func toFloat(src any) (float64, bool) {
	switch s := src.(type) {
	case float64:
		return s, true
	case float32:
		return float64(s), true
	case nil:
		return 0, true
	}
	sv := reflect.ValueOf(src)
	switch {
	case sv.CanInt():
		return float64(sv.Int()), true
	case sv.CanUint():
		return float64(sv.Uint()), true
	}
	return 0, false
}

func scanErr(src, dest any) error {
	return fmt.Errorf("cannot scan %T into %T", src, dest)
}

func rangeErr(src, dest any) error {
	return fmt.Errorf("value %v out of range for %T", src, dest)
}
