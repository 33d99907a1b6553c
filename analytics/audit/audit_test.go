package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestAuditCHDB(t *testing.T)       { testAudit(t, testenv.CHDBStore(t)) }
func TestAuditClickHouse(t *testing.T) { testAudit(t, testenv.ServerStore(t)) }

// testAudit appends a chain, then tampers with it the ways an insider with
// write access to the table could, and checks that Verify names the first
// broken entry each time.
func testAudit(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	log := audit.New(st)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		e, err := log.Append(ctx, audit.Event{
			Actor: "alice", Action: "exception.approve", Object: fmt.Sprintf("exception:EX-%d", i),
			Before: map[string]any{"status": "requested"}, After: map[string]any{"status": "approved", "n": i},
			Detail: "approved", At: t0.Add(time.Duration(i) * time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i) {
			t.Fatalf("append %d got seq %d", i, e.Seq)
		}
	}
	if _, err := log.Append(ctx, audit.Event{Action: "x", Object: "y"}); err == nil {
		t.Fatal("an entry without actor was accepted")
	}
	rep, err := log.Verify(ctx, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Broken != nil || rep.Entries != 6 || rep.Head.Seq != 6 {
		t.Fatalf("intact chain: %+v %+v", rep, rep.Broken)
	}
	head := rep.Head
	var buf bytes.Buffer
	n, err := log.Export(ctx, &buf, 1)
	if err != nil || n != 6 {
		t.Fatalf("export: %d %v", n, err)
	}
	var first audit.Entry
	if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.PrevHash != "" || first.Hash != audit.Hash(first) || !first.At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("exported first entry: %+v", first)
	}
	orig := readAll(t, st)

	cases := []struct {
		name    string
		tamper  func([]audit.Entry) []audit.Entry
		opt     audit.VerifyOptions
		seq     uint64
		contain string
	}{
		{"altered actor", func(es []audit.Entry) []audit.Entry { es[2].Actor = "mallory"; return es }, audit.VerifyOptions{}, 3, "altered"},
		{"altered and rehashed", func(es []audit.Entry) []audit.Entry {
			es[2].Detail = "rejected"
			es[2].Hash = audit.Hash(es[2])
			return es
		}, audit.VerifyOptions{}, 4, "does not follow"},
		{"deleted", func(es []audit.Entry) []audit.Entry { return append(es[:3:3], es[4:]...) }, audit.VerifyOptions{}, 5, "missing"},
		{"deleted first", func(es []audit.Entry) []audit.Entry { return es[1:] }, audit.VerifyOptions{}, 2, "missing"},
		{"reordered", func(es []audit.Entry) []audit.Entry {
			es[3].Seq, es[4].Seq = es[4].Seq, es[3].Seq
			return es
		}, audit.VerifyOptions{}, 4, ""},
		{"duplicated", func(es []audit.Entry) []audit.Entry { return append(es, es[1]) }, audit.VerifyOptions{}, 2, "twice"},
		{"tail removed, anchored", func(es []audit.Entry) []audit.Entry { return es[:4] }, audit.VerifyOptions{ExpectHeadSeq: head.Seq, ExpectHeadHash: head.Hash}, 5, "removed"},
		{"history rewritten, anchored", func(es []audit.Entry) []audit.Entry {
			es[5].Detail = "other"
			es[5].Hash = audit.Hash(es[5])
			return es
		}, audit.VerifyOptions{ExpectHeadSeq: head.Seq, ExpectHeadHash: head.Hash}, 6, "rewritten"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := make([]audit.Entry, len(orig))
			copy(es, orig)
			rewrite(t, st, c.tamper(es))
			defer rewrite(t, st, orig)
			rep, err := log.Verify(ctx, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Broken == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if rep.Broken.Seq != c.seq || !strings.Contains(rep.Broken.Reason, c.contain) {
				t.Fatalf("broken at %d (%s), want %d containing %q", rep.Broken.Seq, rep.Broken.Reason, c.seq, c.contain)
			}
		})
	}
	// Restored, the chain holds again and appending continues it.
	if rep, err := log.Verify(ctx, audit.VerifyOptions{ExpectHeadSeq: head.Seq, ExpectHeadHash: head.Hash}); err != nil || rep.Broken != nil {
		t.Fatalf("restored chain: %+v %v", rep.Broken, err)
	}
	e, err := log.Append(ctx, audit.Event{Actor: "bob", Action: "policy.apply", Object: "policy:2"})
	if err != nil || e.Seq != 7 || e.PrevHash != head.Hash {
		t.Fatalf("append after verify: %+v %v", e, err)
	}
}

func readAll(t *testing.T, st store.Store) []audit.Entry {
	t.Helper()
	var buf bytes.Buffer
	if _, err := audit.New(st).Export(context.Background(), &buf, 0); err != nil {
		t.Fatal(err)
	}
	var es []audit.Entry
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var e audit.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

// rewrite replaces the table's rows with es, as someone with write access to
// the table could.
func rewrite(t *testing.T, st store.Store, es []audit.Entry) {
	t.Helper()
	ctx := context.Background()
	if err := st.Exec(ctx, "TRUNCATE TABLE "+audit.Table); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, len(es))
	for i, e := range es {
		rows[i] = []any{e.Seq, e.At, e.Actor, e.Action, e.Object, e.BeforeDigest, e.AfterDigest, e.Detail, e.PrevHash, e.Hash}
	}
	cols := []string{"seq", "at", "actor", "action", "object", "before_digest", "after_digest", "detail", "prev_hash", "hash"}
	if err := st.Insert(ctx, audit.Table, cols, rows); err != nil {
		t.Fatal(err)
	}
}

func TestDigest(t *testing.T) {
	a, _ := audit.Digest(map[string]any{"b": 1, "a": "x"})
	b, _ := audit.Digest(map[string]any{"a": "x", "b": 1})
	if a == "" || a != b {
		t.Fatalf("digest of equal maps: %q %q", a, b)
	}
	if d, _ := audit.Digest(nil); d != "" {
		t.Fatalf("digest of nil: %q", d)
	}
	if _, err := audit.Digest(func() {}); err == nil {
		t.Fatal("digest of a func did not fail")
	}
}
