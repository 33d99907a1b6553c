// Package audit keeps patchgrid's audit trail: an append-only, hash-chained
// log in the table audit_log (schemas/migrations/0010_audit.sql) of every
// decision a compliance officer may have to prove: policy versions,
// exception state changes, plans, gate decisions and approvals, feed loads,
// refreshes, and API token creation and writes.
//
// Each entry's hash covers its own columns and the previous entry's hash, so
// altering, deleting, duplicating or reordering rows breaks the chain at the
// first affected entry, which Verify names. Removing the newest entries
// leaves a shorter chain that is still whole; to catch that, keep the head
// (Head, `patchgrid audit head`) somewhere else and pass it to Verify.
//
// One process appends through one *Log per store: Append serialises on the
// Log, reading the last entry and writing the next. Two processes appending
// to the same server store at the same instant can both write the same seq;
// Verify reports that as a duplicate entry, never hides it.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Table is the audit log's table.
const Table = "audit_log"

// Columns of audit_log, in the order Entry's fields are written.
var columns = []string{"seq", "at", "actor", "action", "object", "before_digest", "after_digest", "detail", "prev_hash", "hash"}

// Entry is one row of the audit log.
type Entry struct {
	Seq          uint64    `json:"seq"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	Action       string    `json:"action"`
	Object       string    `json:"object"`
	BeforeDigest string    `json:"before_digest"`
	AfterDigest  string    `json:"after_digest"`
	Detail       string    `json:"detail"`
	PrevHash     string    `json:"prev_hash"`
	Hash         string    `json:"hash"`
}

// Event is what a caller records. Before and After are the object's states
// (any JSON-encodable value; nil when there was none): the log keeps their
// digests, not the states, so it proves what changed without copying data.
type Event struct {
	Actor  string // required: a person, a token name, or "patchgrid <command>"
	Action string // required: e.g. "policy.apply", "exception.approve", "feed.load"
	Object string // required: e.g. "policy:3"
	Before any
	After  any
	Detail string    // a short summary for people reading the log
	At     time.Time // zero: now
}

// Log appends to and verifies the audit trail of one store.
type Log struct {
	st  store.Store
	mu  sync.Mutex
	now func() time.Time
}

// New returns the audit log of st. The table comes from the migrations.
func New(st store.Store) *Log {
	return &Log{st: st, now: time.Now}
}

// Digest is the hex sha256 of v's JSON encoding (maps encode with sorted
// keys, so equal states give equal digests), or "" for nil.
func Digest(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	if b, ok := v.([]byte); ok {
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:]), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit digest of %T: %w", v, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Hash is an entry's chain hash: sha256 over a version tag and every column
// but hash itself, each length-prefixed so that no two different entries
// encode alike. The time counts in whole seconds, as the table stores it.
func Hash(e Entry) string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	field("patchgrid-audit-v1")
	field(strconv.FormatUint(e.Seq, 10))
	field(strconv.FormatInt(e.At.Unix(), 10))
	field(e.Actor)
	field(e.Action)
	field(e.Object)
	field(e.BeforeDigest)
	field(e.AfterDigest)
	field(e.Detail)
	field(e.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
}

// Append writes ev as the next entry of the chain and returns it.
func (l *Log) Append(ctx context.Context, ev Event) (Entry, error) {
	if ev.Actor == "" || ev.Action == "" || ev.Object == "" {
		return Entry{}, fmt.Errorf("audit: entry %q on %q by %q: actor, action and object are required (not retryable)", ev.Action, ev.Object, ev.Actor)
	}
	before, err := Digest(ev.Before)
	if err != nil {
		return Entry{}, err
	}
	after, err := Digest(ev.After)
	if err != nil {
		return Entry{}, err
	}
	at := ev.At
	if at.IsZero() {
		at = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	head, err := l.Head(ctx)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{
		Seq: head.Seq + 1, At: at.UTC().Truncate(time.Second),
		Actor: ev.Actor, Action: ev.Action, Object: ev.Object,
		BeforeDigest: before, AfterDigest: after, Detail: ev.Detail,
		PrevHash: head.Hash,
	}
	e.Hash = Hash(e)
	row := []any{e.Seq, e.At, e.Actor, e.Action, e.Object, e.BeforeDigest, e.AfterDigest, e.Detail, e.PrevHash, e.Hash}
	if err := l.st.Insert(ctx, Table, columns, [][]any{row}); err != nil {
		return Entry{}, fmt.Errorf("audit: append %s on %s (seq %d): %w", e.Action, e.Object, e.Seq, err)
	}
	return e, nil
}

// Head is the newest entry (by seq; the greatest hash among duplicates), or
// the zero Entry when the log is empty.
func (l *Log) Head(ctx context.Context) (Entry, error) {
	rows, err := l.st.Query(ctx, "SELECT "+selectList+" FROM "+Table+" ORDER BY seq DESC, hash DESC LIMIT 1")
	if err != nil {
		return Entry{}, fmt.Errorf("audit: read the head of the log: %w", err)
	}
	defer rows.Close()
	var e Entry
	if rows.Next() {
		if err := scanEntry(rows, &e); err != nil {
			return Entry{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return Entry{}, fmt.Errorf("audit: read the head of the log: %w", err)
	}
	return e, nil
}

const selectList = "seq, at, actor, action, object, before_digest, after_digest, detail, prev_hash, hash"

func scanEntry(rows store.Rows, e *Entry) error {
	if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.Object, &e.BeforeDigest, &e.AfterDigest, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return fmt.Errorf("audit: read an entry: %w", err)
	}
	e.At = e.At.UTC()
	return nil
}

// Break is where the chain first fails verification.
type Break struct {
	Seq    uint64 // the entry at which the chain breaks
	Reason string
}

// Report is what Verify found.
type Report struct {
	Entries uint64 // rows read
	Head    Entry  // the last entry of the whole chain (zero when broken or empty)
	Broken  *Break // nil when the chain holds
}

// VerifyOptions anchor the chain to a head kept outside the store, which
// catches the removal of the newest entries.
type VerifyOptions struct {
	// ExpectHeadSeq and ExpectHeadHash, when set, must be an entry of the
	// chain: the chain must reach that seq with exactly that hash.
	ExpectHeadSeq  uint64
	ExpectHeadHash string
}

// ErrBroken is wrapped by callers that turn a broken chain into an error.
var ErrBroken = errors.New("audit chain broken")

// Verify recomputes the chain from its first entry and reports the first
// entry that breaks it: a missing or duplicated seq, a prev_hash that is not
// the previous entry's hash (reordered or replaced rows), or a hash that
// does not match the entry's contents (altered row).
func (l *Log) Verify(ctx context.Context, opt VerifyOptions) (Report, error) {
	rows, err := l.st.Query(ctx, "SELECT "+selectList+" FROM "+Table+" ORDER BY seq, hash")
	if err != nil {
		return Report{}, fmt.Errorf("audit: read the log: %w", err)
	}
	defer rows.Close()
	var (
		rep       Report
		prev      Entry
		anchorHit bool
	)
	fail := func(seq uint64, format string, args ...any) (Report, error) {
		rep.Head = Entry{}
		rep.Broken = &Break{Seq: seq, Reason: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return Report{}, err
		}
		rep.Entries++
		switch {
		case e.Seq == prev.Seq && rep.Entries > 1:
			return fail(e.Seq, "entry %d appears twice (a duplicated or concurrently appended row)", e.Seq)
		case e.Seq != prev.Seq+1:
			if prev.Seq == 0 {
				return fail(e.Seq, "the log starts at entry %d, not 1: entries 1..%d are missing", e.Seq, e.Seq-1)
			}
			return fail(e.Seq, "entries %d..%d are missing (deleted) between entry %d and entry %d", prev.Seq+1, e.Seq-1, prev.Seq, e.Seq)
		case e.PrevHash != prev.Hash:
			return fail(e.Seq, "entry %d does not follow entry %d: its prev_hash %s is not that entry's hash %s (rows reordered or replaced)", e.Seq, prev.Seq, short(e.PrevHash), short(prev.Hash))
		case Hash(e) != e.Hash:
			return fail(e.Seq, "entry %d does not match its hash (the row was altered): stored %s, computed %s", e.Seq, short(e.Hash), short(Hash(e)))
		}
		if opt.ExpectHeadSeq != 0 && e.Seq == opt.ExpectHeadSeq {
			if e.Hash != opt.ExpectHeadHash {
				return fail(e.Seq, "entry %d has hash %s, not the expected head %s (history rewritten)", e.Seq, short(e.Hash), short(opt.ExpectHeadHash))
			}
			anchorHit = true
		}
		prev = e
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("audit: read the log: %w", err)
	}
	if opt.ExpectHeadSeq != 0 && !anchorHit {
		return fail(prev.Seq+1, "the log ends at entry %d, before the expected head %d: entries %d..%d were removed", prev.Seq, opt.ExpectHeadSeq, prev.Seq+1, opt.ExpectHeadSeq)
	}
	rep.Head = prev
	return rep, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}

// Export writes the entries with seq >= since as JSON lines, in seq order,
// and returns how many it wrote.
func (l *Log) Export(ctx context.Context, w io.Writer, since uint64) (int, error) {
	rows, err := l.st.Query(ctx, "SELECT "+selectList+" FROM "+Table+" WHERE seq >= ? ORDER BY seq, hash", since)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	n := 0
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return n, err
		}
		if err := enc.Encode(e); err != nil {
			return n, fmt.Errorf("audit: export: write entry %d: %w", e.Seq, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}
