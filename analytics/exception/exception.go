// Package exception keeps risk acceptances: an exception accepts the risk
// of one advisory (or CVE) on a host, a group of hosts or a package, with an
// owner, a reason, a compensating control and an expiry, after someone other
// than its requester approved it.
//
// Exceptions never hide a finding. Views over them (0012_exception_views)
// mark the findings and exposures an approved, unexpired exception covers as
// accepted, and every KPI can be read with and without them. An exception
// does not move a finding's SLA deadline: when it expires, the finding is
// back with the deadline it always had.
//
// Every state change is a new version of the exception's row (table
// exceptions, 0011) and an entry in the audit trail (analytics/audit).
package exception

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Status is an exception's state. Expired is never stored: an approved
// exception is expired once its expiry has passed.
type Status string

// The statuses, the only spellings used anywhere.
const (
	Requested Status = "requested"
	Approved  Status = "approved"
	Rejected  Status = "rejected"
	Expired   Status = "expired"
	Revoked   Status = "revoked"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{Requested, Approved, Rejected, Expired, Revoked}

// ParseStatus accepts a status name in any case.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown exception status %q (want one of requested, approved, rejected, expired, revoked)", s)
}

// ScopeKind says what an exception covers besides its advisory.
type ScopeKind string

// Scope kinds.
const (
	ScopeHost    ScopeKind = "host"
	ScopePackage ScopeKind = "package"
	ScopeGroup   ScopeKind = "group"
)

// Selector is a group of hosts by their labels, from a selector string
// "ring=prod,owner=web,os=Debian:12,criticality=4,internet_facing=true,hostname=web-*".
// A label left out is not constrained; hostname is a glob (* and ?).
type Selector struct {
	Ring, Owner, OS string
	Criticality     int16 // -1: any
	InternetFacing  int8  // -1: any, 0 or 1
	Hostname        string
}

// ParseSelector parses a selector string; the error names the bad term.
func ParseSelector(s string) (Selector, error) {
	sel := Selector{Criticality: -1, InternetFacing: -1}
	if strings.TrimSpace(s) == "" {
		return sel, errors.New("empty group selector: want label=value[,label=value...] with labels ring, owner, os, criticality, internet_facing, hostname")
	}
	seen := map[string]bool{}
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(term), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return sel, fmt.Errorf("selector term %q: want label=value", term)
		}
		if seen[k] {
			return sel, fmt.Errorf("selector label %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "ring":
			sel.Ring = v
		case "owner":
			sel.Owner = v
		case "os":
			sel.OS = v
		case "criticality":
			n, err := strconv.ParseInt(v, 10, 16)
			if err != nil || n < 0 || n > 4 {
				return sel, fmt.Errorf("selector criticality=%q: want 0..4", v)
			}
			sel.Criticality = int16(n)
		case "internet_facing":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return sel, fmt.Errorf("selector internet_facing=%q: want true or false", v)
			}
			sel.InternetFacing = 0
			if b {
				sel.InternetFacing = 1
			}
		case "hostname":
			if _, err := path.Match(v, ""); err != nil {
				return sel, fmt.Errorf("selector hostname=%q: bad glob: %v", v, err)
			}
			sel.Hostname = v
		default:
			return sel, fmt.Errorf("selector label %q: want ring, owner, os, criticality, internet_facing or hostname", k)
		}
	}
	return sel, nil
}

// hostnameLike turns a hostname glob into a LIKE pattern: * → %, ? → _,
// with LIKE's own metacharacters escaped.
func hostnameLike(glob string) string {
	if glob == "" {
		return ""
	}
	var b strings.Builder
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Exception is the current version of one exception.
type Exception struct {
	ID                  string    `json:"exception_id"`
	Version             uint32    `json:"version"`
	Advisory            string    `json:"advisory"`
	Scope               ScopeKind `json:"scope"`
	Host                string    `json:"host,omitempty"`
	Package             string    `json:"package,omitempty"`
	Selector            string    `json:"selector,omitempty"`
	Owner               string    `json:"owner"`
	Reason              string    `json:"reason"`
	CompensatingControl string    `json:"compensating_control,omitempty"`
	Requester           string    `json:"requester"`
	Approver            string    `json:"approver,omitempty"`
	Status              Status    `json:"status"` // effective: expired when approved and past ExpiresAt
	StatusReason        string    `json:"status_reason,omitempty"`
	RequestedAt         time.Time `json:"requested_at"`
	DecidedAt           time.Time `json:"decided_at,omitzero"`
	ExpiresAt           time.Time `json:"expires_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	UpdatedBy           string    `json:"updated_by"`
}

// Request is what a requester asks for.
type Request struct {
	Advisory string // advisory id or CVE id
	// Exactly one of Host, Group (a selector) and Package.
	Host, Group, Package string
	Owner                string
	Reason               string
	CompensatingControl  string
	Requester            string
	// ExpiresIn is how long the exception lasts once requested; at most
	// the Book's MaxDuration.
	ExpiresIn time.Duration
}

// Config configures a Book.
type Config struct {
	// MaxDuration caps an exception's lifetime (from its request). Default
	// 90 days; the active policy's exception cap when it sets one.
	MaxDuration time.Duration
	// Cap, when set, is read at each request: the active policy's cap
	// (policy.ExceptionCap). A non-zero answer replaces MaxDuration, so the
	// policy is the one place the cap is stated.
	Cap func(context.Context) (time.Duration, error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultMaxDuration is the cap when the policy sets none.
const DefaultMaxDuration = 90 * 24 * time.Hour

// Book reads and changes exceptions in one store, recording every change
// in the audit trail.
type Book struct {
	st  store.Store
	log *audit.Log
	cfg Config
}

// New returns the exception book of st; log is the store's audit trail.
func New(st store.Store, log *audit.Log, cfg Config) *Book {
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Book{st: st, log: log, cfg: cfg}
}

// ErrInvalid marks a request or a transition the rules refuse; a retry
// cannot help. ErrNotFound marks an unknown exception id.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Request records a new exception in status requested and returns it.
func (b *Book) Request(ctx context.Context, r Request) (Exception, error) {
	now := b.cfg.Now().UTC().Truncate(time.Second)
	e := Exception{
		Version: 1, Advisory: strings.TrimSpace(r.Advisory),
		Owner: strings.TrimSpace(r.Owner), Reason: strings.TrimSpace(r.Reason),
		CompensatingControl: strings.TrimSpace(r.CompensatingControl),
		Requester:           strings.TrimSpace(r.Requester),
		Status:              Requested, RequestedAt: now, ExpiresAt: now.Add(r.ExpiresIn),
		UpdatedAt: now, UpdatedBy: strings.TrimSpace(r.Requester),
	}
	switch {
	case e.Advisory == "":
		return Exception{}, invalid("an exception needs --advisory (an advisory or CVE id)")
	case e.Owner == "":
		return Exception{}, invalid("an exception needs an owner")
	case e.Reason == "":
		return Exception{}, invalid("an exception needs a reason")
	case e.Requester == "":
		return Exception{}, invalid("an exception needs a requester")
	case r.ExpiresIn <= 0:
		return Exception{}, invalid("an exception needs an expiry in the future (e.g. 30d)")
	}
	maxDur := b.cfg.MaxDuration
	if b.cfg.Cap != nil {
		c, err := b.cfg.Cap(ctx)
		if err != nil {
			return Exception{}, fmt.Errorf("exception request: %w", err)
		}
		if c > 0 {
			maxDur = c
		}
	}
	if r.ExpiresIn > maxDur {
		return Exception{}, invalid("expiry %s is past the policy's cap of %s", fmtDays(r.ExpiresIn), fmtDays(maxDur))
	}
	n := 0
	for _, s := range []string{r.Host, r.Group, r.Package} {
		if strings.TrimSpace(s) != "" {
			n++
		}
	}
	if n != 1 {
		return Exception{}, invalid("an exception covers exactly one of a host, a group selector or a package (got %d)", n)
	}
	switch {
	case strings.TrimSpace(r.Host) != "":
		e.Scope, e.Host = ScopeHost, strings.TrimSpace(r.Host)
	case strings.TrimSpace(r.Package) != "":
		e.Scope, e.Package = ScopePackage, strings.TrimSpace(r.Package)
	default:
		if _, err := ParseSelector(r.Group); err != nil {
			return Exception{}, invalid("%v", err)
		}
		e.Scope, e.Selector = ScopeGroup, strings.TrimSpace(r.Group)
	}
	id, err := newID()
	if err != nil {
		return Exception{}, err
	}
	e.ID = id
	if err := b.write(ctx, e); err != nil {
		return Exception{}, err
	}
	return e, b.record(ctx, e.Requester, "exception.request", nil, e, "requested "+e.describe())
}

func fmtDays(d time.Duration) string {
	return strconv.FormatFloat(d.Hours()/24, 'f', -1, 64) + " days"
}

func (e Exception) describe() string {
	target := e.Host + e.Package + e.Selector
	return fmt.Sprintf("%s on %s %s until %s", e.Advisory, e.Scope, target, e.ExpiresAt.Format(time.DateOnly))
}

func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("exception id: %w", err)
	}
	return "EX-" + hex.EncodeToString(b[:]), nil
}

// Approve approves a requested exception. The approver must not be its
// requester.
func (b *Book) Approve(ctx context.Context, id, approver string) (Exception, error) {
	return b.transition(ctx, id, approver, "exception.approve", "", func(e *Exception, now time.Time) error {
		if e.Status != Requested {
			return invalid("exception %s is %s; only a requested exception can be approved", e.ID, e.Status)
		}
		if !e.ExpiresAt.After(now) {
			return invalid("exception %s expired on %s before anyone approved it; request it again", e.ID, e.ExpiresAt.Format(time.DateOnly))
		}
		if strings.EqualFold(strings.TrimSpace(approver), e.Requester) {
			return invalid("exception %s: %s requested it and cannot approve it too (four eyes)", e.ID, e.Requester)
		}
		e.Status, e.Approver, e.DecidedAt = Approved, strings.TrimSpace(approver), now
		return nil
	})
}

// Reject rejects a requested exception.
func (b *Book) Reject(ctx context.Context, id, approver, reason string) (Exception, error) {
	return b.transition(ctx, id, approver, "exception.reject", reason, func(e *Exception, now time.Time) error {
		if e.Status != Requested {
			return invalid("exception %s is %s; only a requested exception can be rejected", e.ID, e.Status)
		}
		e.Status, e.Approver, e.DecidedAt = Rejected, strings.TrimSpace(approver), now
		return nil
	})
}

// Revoke ends a requested or approved exception before its expiry.
func (b *Book) Revoke(ctx context.Context, id, actor, reason string) (Exception, error) {
	return b.transition(ctx, id, actor, "exception.revoke", reason, func(e *Exception, now time.Time) error {
		if e.Status != Requested && e.Status != Approved {
			return invalid("exception %s is %s; only a requested or approved exception can be revoked", e.ID, e.Status)
		}
		e.Status = Revoked
		return nil
	})
}

func (b *Book) transition(ctx context.Context, id, actor, action, reason string, change func(*Exception, time.Time) error) (Exception, error) {
	if strings.TrimSpace(actor) == "" {
		return Exception{}, invalid("%s %s: who does it? (--approver / --actor)", action, id)
	}
	cur, err := b.Get(ctx, id)
	if err != nil {
		return Exception{}, err
	}
	before := cur
	now := b.cfg.Now().UTC().Truncate(time.Second)
	next := cur
	if err := change(&next, now); err != nil {
		return Exception{}, err
	}
	next.Version = cur.Version + 1
	next.StatusReason = strings.TrimSpace(reason)
	next.UpdatedAt, next.UpdatedBy = now, strings.TrimSpace(actor)
	if err := b.write(ctx, next); err != nil {
		return Exception{}, err
	}
	return next, b.record(ctx, next.UpdatedBy, action, before, next, string(next.Status)+" "+next.describe())
}

func (b *Book) record(ctx context.Context, actor, action string, before, after any, detail string) error {
	if b.log == nil {
		return nil
	}
	var obj string
	switch x := after.(type) {
	case Exception:
		obj = "exception:" + x.ID
	}
	if _, err := b.log.Append(ctx, audit.Event{Actor: actor, Action: action, Object: obj, Before: before, After: after, Detail: detail}); err != nil {
		return fmt.Errorf("%s recorded, but its audit entry failed (record it again with care): %w", obj, err)
	}
	return nil
}

var columns = []string{"exception_id", "version", "advisory", "scope", "host", "package", "selector",
	"sel_ring", "sel_owner", "sel_os", "sel_criticality", "sel_internet_facing", "sel_hostname_like",
	"owner", "reason", "compensating_control", "requester", "approver", "status", "status_reason",
	"requested_at", "decided_at", "expires_at", "updated_at", "updated_by"}

func (b *Book) write(ctx context.Context, e Exception) error {
	sel := Selector{Criticality: -1, InternetFacing: -1}
	if e.Scope == ScopeGroup {
		var err error
		if sel, err = ParseSelector(e.Selector); err != nil {
			return invalid("%v", err)
		}
	}
	status := e.Status
	if status == Expired {
		status = Approved // expiry is read off expires_at, never stored
	}
	decided := e.DecidedAt
	if decided.IsZero() {
		decided = time.Unix(0, 0).UTC()
	}
	row := []any{e.ID, e.Version, e.Advisory, string(e.Scope), e.Host, e.Package, e.Selector,
		sel.Ring, sel.Owner, sel.OS, sel.Criticality, sel.InternetFacing, hostnameLike(sel.Hostname),
		e.Owner, e.Reason, e.CompensatingControl, e.Requester, e.Approver, string(status), e.StatusReason,
		e.RequestedAt, decided, e.ExpiresAt, e.UpdatedAt, e.UpdatedBy}
	if err := b.st.Insert(ctx, "exceptions", columns, [][]any{row}); err != nil {
		return fmt.Errorf("write exception %s version %d: %w", e.ID, e.Version, err)
	}
	return nil
}

const selectList = "exception_id, version, advisory, scope, host, package, selector, owner, reason, compensating_control, " +
	"requester, approver, status, status_reason, requested_at, decided_at, expires_at, updated_at, updated_by"

// Get returns the current version of exception id with its effective
// status.
func (b *Book) Get(ctx context.Context, id string) (Exception, error) {
	es, err := b.query(ctx, "WHERE exception_id = ?", id)
	if err != nil {
		return Exception{}, err
	}
	if len(es) == 0 {
		return Exception{}, fmt.Errorf("exception %q: %w", id, ErrNotFound)
	}
	return es[0], nil
}

// Filter selects exceptions for List. Zero values select all.
type Filter struct {
	Status   Status
	Advisory string
	// ExpiringWithin keeps approved exceptions that expire within it.
	ExpiringWithin time.Duration
}

// List returns the current exceptions, newest request first.
func (b *Book) List(ctx context.Context, f Filter) ([]Exception, error) {
	var (
		where []string
		args  []any
	)
	if f.Advisory != "" {
		where = append(where, "advisory = ?")
		args = append(args, f.Advisory)
	}
	q := ""
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ")
	}
	es, err := b.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	now := b.cfg.Now()
	out := es[:0]
	for _, e := range es {
		if f.Status != "" && e.Status != f.Status {
			continue
		}
		if f.ExpiringWithin > 0 && (e.Status != Approved || e.ExpiresAt.After(now.Add(f.ExpiringWithin))) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// query reads the current versions from exceptions_current, whose
// effective_status is the one definition of "expired".
func (b *Book) query(ctx context.Context, where string, args ...any) ([]Exception, error) {
	q := "SELECT " + strings.Replace(selectList, "status,", "effective_status,", 1) +
		" FROM exceptions_current " + where + " ORDER BY requested_at DESC, exception_id"
	rows, err := b.st.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	defer rows.Close()
	var out []Exception
	for rows.Next() {
		var (
			e             Exception
			scope, status string
		)
		if err := rows.Scan(&e.ID, &e.Version, &e.Advisory, &scope, &e.Host, &e.Package, &e.Selector, &e.Owner, &e.Reason,
			&e.CompensatingControl, &e.Requester, &e.Approver, &status, &e.StatusReason,
			&e.RequestedAt, &e.DecidedAt, &e.ExpiresAt, &e.UpdatedAt, &e.UpdatedBy); err != nil {
			return nil, fmt.Errorf("read exceptions: %w", err)
		}
		e.Scope, e.Status = ScopeKind(scope), Status(status)
		if e.DecidedAt.Unix() == 0 {
			e.DecidedAt = time.Time{}
		}
		for _, t := range []*time.Time{&e.RequestedAt, &e.DecidedAt, &e.ExpiresAt, &e.UpdatedAt} {
			if !t.IsZero() {
				*t = t.UTC()
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	return out, nil
}
