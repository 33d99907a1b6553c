package inventory

import (
	"errors"
	"fmt"
)

// Reason classifies why a message could not be decoded. The consumer puts it
// in the dead-letter record, so the values are stable strings.
type Reason string

const (
	ReasonBadMagic       Reason = "bad_magic"       // not a patchgrid scan message
	ReasonUnknownVersion Reason = "unknown_version" // schema version or flags this build does not know
	ReasonBadCompression Reason = "bad_compression" // the zstd body does not decompress
	ReasonTooLarge       Reason = "too_large"       // a size or count over the decoder's limits
	ReasonTruncated      Reason = "truncated"       // the body ends inside a field
	ReasonMalformed      Reason = "malformed"       // bytes that cannot be a v1 body (bad index, trailing bytes, invalid UTF-8)
	ReasonInvalid        Reason = "invalid"         // well-formed but violates a rule (empty host id, heartbeat with packages, hash mismatch)
)

// DecodeError says what is wrong with a message and where.
type DecodeError struct {
	Reason Reason
	Field  string // the field being read, e.g. "packages.version[12]"; empty when not field-specific
	Offset int    // byte offset in the decompressed body (or in the header), -1 when unknown
	Err    error  // underlying cause, may be nil
	Detail string
}

func (e *DecodeError) Error() string {
	msg := "scan message: " + string(e.Reason)
	if e.Field != "" {
		msg += " at " + e.Field
	}
	if e.Offset >= 0 {
		msg += fmt.Sprintf(" (offset %d)", e.Offset)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a decode error, or "" when err is nil or
// not a *DecodeError.
func ReasonOf(err error) Reason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

func decodeErr(r Reason, field string, off int, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Field: field, Offset: off, Detail: fmt.Sprintf(format, args...)}
}
