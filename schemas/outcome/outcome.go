// Package outcome is the wire schema of deployment outcomes: what
// remediation automation reports back for each action of a plan, on the
// Kafka topic patchgrid.outcomes (key: host id), through `patchgrid
// outcome report`, or POST /api/v1/outcomes. See README.md.
//
// Outcomes come from other teams' tools, so the schema is JSON (one object
// per message or line) with an explicit version, decoded strictly: every
// rule of Validate holds for every decoded outcome, and a bad message is an
// error that names the field, never a guess.
package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the schema version Encode writes and Decode reads.
const Version = 1

// Topic is the Kafka topic outcomes travel on.
const Topic = "patchgrid.outcomes"

// MaxMessageBytes bounds one encoded outcome; the error text is the only
// free-form field and is cut to MaxErrorBytes by producers.
const (
	MaxMessageBytes = 64 << 10
	MaxErrorBytes   = 8 << 10
	maxIDBytes      = 512
)

// The times an outcome can carry (ClickHouse DateTime's range).
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(1<<32-1, 0).UTC()
)

// Status is what happened to one action. The vocabulary is fixed: the
// verification and gate logic (analytics) count on it.
type Status string

// The statuses an outcome can report.
const (
	Succeeded  Status = "succeeded"
	Failed     Status = "failed"
	RolledBack Status = "rolled_back"
	Skipped    Status = "skipped"
)

// Statuses lists them in a stable order.
var Statuses = []Status{Succeeded, Failed, RolledBack, Skipped}

// Outcome is one attempt at one action of a plan on one host.
type Outcome struct {
	SchemaVersion  int       `json:"version"`
	PlanID         string    `json:"plan_id"`
	ActionID       string    `json:"action_id"`
	HostID         string    `json:"host_id"`
	Package        string    `json:"package"`
	FromVersion    string    `json:"from_version"`
	ToVersion      string    `json:"to_version"`
	Status         Status    `json:"status"`
	Attempt        uint32    `json:"attempt"` // 1 for the first try
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	Error          string    `json:"error,omitempty"`
	RebootRequired bool      `json:"reboot_required"`
}

// FieldError says which field of an outcome is wrong and why. A retry of
// the same message cannot help.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return "outcome: " + e.Field + ": " + e.Reason }

// ErrMalformed wraps every decoding error, so callers can dead-letter it.
var ErrMalformed = errors.New("malformed outcome")

func bad(field, format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrMalformed, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Validate checks every rule of the schema.
func (o *Outcome) Validate() error { return o.validate(true) }

// validate checks the rules of the schema, UTF-8 only when checkUTF8
// (the decoder checked every string as it read it).
func (o *Outcome) validate(checkUTF8 bool) error {
	if o.SchemaVersion != Version {
		return bad("version", "%d is not a known schema version (this build reads %d)", o.SchemaVersion, Version)
	}
	for _, f := range []struct{ name, v string }{
		{"plan_id", o.PlanID}, {"action_id", o.ActionID}, {"host_id", o.HostID}, {"package", o.Package}, {"to_version", o.ToVersion},
	} {
		if strings.TrimSpace(f.v) == "" {
			return bad(f.name, "required")
		}
		if len(f.v) > maxIDBytes {
			return bad(f.name, "longer than %d bytes", maxIDBytes)
		}
	}
	if len(o.FromVersion) > maxIDBytes {
		return bad("from_version", "longer than %d bytes", maxIDBytes)
	}
	if checkUTF8 {
		for _, f := range []struct{ name, v string }{
			{"plan_id", o.PlanID}, {"action_id", o.ActionID}, {"host_id", o.HostID}, {"package", o.Package},
			{"from_version", o.FromVersion}, {"to_version", o.ToVersion}, {"error", o.Error},
		} {
			if !utf8.ValidString(f.v) {
				return bad(f.name, "not valid UTF-8")
			}
		}
	}
	switch o.Status {
	case Succeeded, Failed, RolledBack, Skipped:
	default:
		return bad("status", "%q: want succeeded, failed, rolled_back or skipped", o.Status)
	}
	if o.Attempt == 0 {
		return bad("attempt", "must be 1 or more")
	}
	if o.StartedAt.IsZero() {
		return bad("started_at", "required")
	}
	if o.FinishedAt.IsZero() {
		return bad("finished_at", "required")
	}
	// Stored as ClickHouse DateTime: whole seconds from 1970 to 2106.
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"started_at", o.StartedAt}, {"finished_at", o.FinishedAt}} {
		if u := f.t.UTC(); u.Before(minTime) || !u.Before(maxTime) {
			return bad(f.name, "%s is outside 1970-01-01..2106-02-07 UTC", u.Format(time.RFC3339))
		}
	}
	if o.FinishedAt.Before(o.StartedAt) {
		return bad("finished_at", "%s is before started_at %s", o.FinishedAt.Format(time.RFC3339), o.StartedAt.Format(time.RFC3339))
	}
	if len(o.Error) > MaxErrorBytes {
		return bad("error", "longer than %d bytes", MaxErrorBytes)
	}
	if (o.Status == Failed || o.Status == RolledBack) && strings.TrimSpace(o.Error) == "" {
		return bad("error", "a %s outcome says why", o.Status)
	}
	return nil
}

// Encode validates o and writes it as one JSON object (times in UTC,
// RFC 3339 with nanoseconds).
func Encode(o Outcome) ([]byte, error) {
	if o.SchemaVersion == 0 {
		o.SchemaVersion = Version
	}
	o.StartedAt, o.FinishedAt = o.StartedAt.UTC(), o.FinishedAt.UTC()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("outcome: encode: %w", err)
	}
	if len(b) > MaxMessageBytes {
		return nil, bad("message", "%d bytes encoded, more than %d", len(b), MaxMessageBytes)
	}
	return b, nil
}

// Decode reads one outcome. Unknown fields are refused (a misspelt
// "reboot_requried" must not pass as false), as are fields in another case
// ("Plan_ID"), duplicate fields (JSON decoders disagree on which one wins,
// so such a message means different things to different readers), null
// values, and trailing data. It reads the message in one pass (decode.go).
func Decode(b []byte) (Outcome, error) { return decode(b, nil) }

// Decoder decodes outcomes one after another, as Decode does, reusing the
// strings of the previous outcome it decoded: plan, host, package,
// versions and error text repeat from outcome to outcome along a wave of
// a plan, and a repeated one is not allocated again (a consumer decodes
// hundreds of thousands of outcomes a second). The zero value is ready;
// it is not safe for concurrent use.
type Decoder struct {
	last [fRebootRequired + 1]string
}

// Decode reads one outcome, as the function Decode.
func (dec *Decoder) Decode(b []byte) (Outcome, error) { return decode(b, &dec.last) }

func decode(b []byte, last *[fRebootRequired + 1]string) (Outcome, error) {
	var o Outcome
	if len(b) > MaxMessageBytes {
		return o, bad("message", "%d bytes, more than %d", len(b), MaxMessageBytes)
	}
	d := decoder{b: b, last: last}
	if err := d.decode(&o); err != nil {
		return Outcome{}, err
	}
	if err := o.validate(false); err != nil {
		return Outcome{}, err
	}
	o.StartedAt, o.FinishedAt = o.StartedAt.UTC(), o.FinishedAt.UTC()
	return o, nil
}
