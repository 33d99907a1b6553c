package exception_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestParseSelector(t *testing.T) {
	for _, c := range []struct {
		in   string
		want exception.Selector
		err  string
	}{
		{"ring=prod", exception.Selector{Ring: "prod", Criticality: -1, InternetFacing: -1}, ""},
		{"ring=prod, owner=web ,criticality=4,internet_facing=false,hostname=web-*,os=Debian:12",
			exception.Selector{Ring: "prod", Owner: "web", OS: "Debian:12", Criticality: 4, InternetFacing: 0, Hostname: "web-*"}, ""},
		{"", exception.Selector{}, "empty"},
		{"ring", exception.Selector{}, "label=value"},
		{"ring=a,ring=b", exception.Selector{}, "twice"},
		{"criticality=9", exception.Selector{}, "0..4"},
		{"internet_facing=maybe", exception.Selector{}, "true or false"},
		{"hostname=[", exception.Selector{}, "bad glob"},
		{"colour=red", exception.Selector{}, "want ring"},
	} {
		got, err := exception.ParseSelector(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
}

func TestBookCHDB(t *testing.T)       { testBook(t, testenv.CHDBStore(t)) }
func TestBookClickHouse(t *testing.T) { testBook(t, testenv.ServerStore(t)) }

func testBook(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	log := audit.New(st)
	book := exception.New(st, log, exception.Config{MaxDuration: 90 * 24 * time.Hour})
	base := exception.Request{Advisory: "CVE-2023-38545", Host: "web-1", Owner: "web team", Reason: "no reboot before the release",
		CompensatingControl: "curl not reachable from outside", Requester: "alice", ExpiresIn: 30 * 24 * time.Hour}

	for _, c := range []struct {
		name string
		edit func(*exception.Request)
		want string
	}{
		{"no advisory", func(r *exception.Request) { r.Advisory = "" }, "advisory"},
		{"no owner", func(r *exception.Request) { r.Owner = " " }, "owner"},
		{"no reason", func(r *exception.Request) { r.Reason = "" }, "reason"},
		{"no requester", func(r *exception.Request) { r.Requester = "" }, "requester"},
		{"no expiry", func(r *exception.Request) { r.ExpiresIn = 0 }, "expiry"},
		{"over the cap", func(r *exception.Request) { r.ExpiresIn = 91 * 24 * time.Hour }, "cap of 90 days"},
		{"two scopes", func(r *exception.Request) { r.Package = "curl" }, "exactly one"},
		{"no scope", func(r *exception.Request) { r.Host = "" }, "exactly one"},
		{"bad selector", func(r *exception.Request) { r.Host, r.Group = "", "ring" }, "label=value"},
	} {
		r := base
		c.edit(&r)
		if _, err := book.Request(ctx, r); err == nil || !errors.Is(err, exception.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid about %q", c.name, err, c.want)
		}
	}

	ex, err := book.Request(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ex.ID, "EX-") || ex.Status != exception.Requested || ex.Scope != exception.ScopeHost {
		t.Fatalf("requested: %+v", ex)
	}
	if _, err := book.Approve(ctx, ex.ID, "Alice"); !errors.Is(err, exception.ErrInvalid) || !strings.Contains(err.Error(), "four eyes") {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := book.Approve(ctx, "EX-000000000000", "bob"); !errors.Is(err, exception.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	ex, err = book.Approve(ctx, ex.ID, "bob")
	if err != nil || ex.Status != exception.Approved || ex.Approver != "bob" || ex.Version != 2 {
		t.Fatalf("approve: %+v %v", ex, err)
	}
	if _, err := book.Reject(ctx, ex.ID, "carol", "too late"); !errors.Is(err, exception.ErrInvalid) {
		t.Fatalf("reject an approved exception: %v", err)
	}
	got, err := book.Get(ctx, ex.ID)
	if err != nil || got.Status != exception.Approved || got.Version != 2 || got.CompensatingControl != base.CompensatingControl {
		t.Fatalf("get: %+v %v", got, err)
	}

	r2 := base
	r2.Host, r2.Group = "", "ring=prod,hostname=db-*"
	ex2, err := book.Request(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	if ex2, err = book.Reject(ctx, ex2.ID, "bob", "fix is ready"); err != nil || ex2.Status != exception.Rejected || ex2.StatusReason != "fix is ready" {
		t.Fatalf("reject: %+v %v", ex2, err)
	}
	if _, err := book.Revoke(ctx, ex2.ID, "bob", ""); !errors.Is(err, exception.ErrInvalid) {
		t.Fatalf("revoke a rejected exception: %v", err)
	}
	if ex, err = book.Revoke(ctx, ex.ID, "carol", "patched after all"); err != nil || ex.Status != exception.Revoked {
		t.Fatalf("revoke: %+v %v", ex, err)
	}
	if _, err := book.Approve(ctx, ex.ID, "bob"); !errors.Is(err, exception.ErrInvalid) {
		t.Fatalf("approve a revoked exception: %v", err)
	}

	// Approved 40 days ago for 30 days: expired now, without anyone
	// writing anything.
	past := exception.New(st, log, exception.Config{Now: func() time.Time { return time.Now().Add(-40 * 24 * time.Hour) }})
	old, err := past.Request(ctx, exception.Request{Advisory: "CVE-2024-0001", Package: "openssl", Owner: "o", Reason: "r", Requester: "alice", ExpiresIn: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := past.Approve(ctx, old.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if old, err = book.Get(ctx, old.ID); err != nil || old.Status != exception.Expired {
		t.Fatalf("expired: %+v %v", old, err)
	}
	if _, err := book.Revoke(ctx, old.ID, "bob", ""); !errors.Is(err, exception.ErrInvalid) {
		t.Fatalf("revoke an expired exception: %v", err)
	}

	all, err := book.List(ctx, exception.Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d %v", len(all), err)
	}
	expired, err := book.List(ctx, exception.Filter{Status: exception.Expired})
	if err != nil || len(expired) != 1 || expired[0].ID != old.ID {
		t.Fatalf("list expired: %+v %v", expired, err)
	}

	// Every state change is in the audit trail, and the chain holds.
	var actions []string
	rows, err := st.Query(ctx, "SELECT action FROM audit_log ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a)
	}
	rows.Close()
	want := []string{"exception.request", "exception.approve", "exception.request", "exception.reject", "exception.revoke", "exception.request", "exception.approve"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	if rep, err := log.Verify(ctx, audit.VerifyOptions{}); err != nil || rep.Broken != nil {
		t.Fatalf("audit chain: %+v %v", rep.Broken, err)
	}
}

// TestFindingExceptions checks the scope matching of finding_exceptions
// (0016's exception_coverage) on the embedded store, over the KPI test
// fleet's current findings: h2 (prod, h2.example) has pkga/A1 (CVE-2024-0001)
// and pkgb/A2 (CVE-2024-0002); h3 (test) has pkgd/A4 (CVE-2024-0004).
func TestFindingExceptions(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	book := exception.New(st, nil, exception.Config{})
	approve := func(r exception.Request) string {
		t.Helper()
		r.Owner, r.Reason, r.Requester, r.ExpiresIn = "o", "r", "alice", 24*time.Hour
		ex, err := book.Request(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := book.Approve(ctx, ex.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		return ex.ID
	}
	byHost := approve(exception.Request{Advisory: "CVE-2024-0002", Host: "h2.example"}) // by hostname and CVE alias
	byGroup := approve(exception.Request{Advisory: "A1", Group: "ring=prod,hostname=h2*"})
	byPackage := approve(exception.Request{Advisory: "CVE-2024-0004", Package: "pkgd"})
	approve(exception.Request{Advisory: "CVE-2024-0004", Package: "pkga"}) // covers nothing: pkga has no such CVE
	approve(exception.Request{Advisory: "A1", Group: "ring=test"})         // covers nothing: A1 is on prod only
	if _, err := book.Request(ctx, exception.Request{Advisory: "A2", Host: "h2", Owner: "o", Reason: "r", Requester: "alice", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err) // requested, never approved: covers nothing
	}

	rows, err := st.Query(ctx, "SELECT host_id, advisory_id, package, exception_id FROM finding_exceptions ORDER BY host_id, advisory_id, package")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var h, a, p, id string
		if err := rows.Scan(&h, &a, &p, &id); err != nil {
			t.Fatal(err)
		}
		got = append(got, h+" "+a+" "+p+" "+id)
	}
	rows.Close()
	want := []string{
		"h2 A1 pkga " + byGroup,
		"h2 A2 pkgb " + byHost,
		"h3 A4 pkgd " + byPackage,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("finding_exceptions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzParseSelector: a selector string comes from a person or an API body;
// whatever it is, ParseSelector returns a selector whose labels are in range
// or an error, and never panics.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"ring=prod", "ring=prod,owner=web,os=Debian:12,criticality=4,internet_facing=true,hostname=web-*", "", "=", "hostname=[", "criticality=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := exception.ParseSelector(s)
		if err != nil {
			return
		}
		if sel.Criticality < -1 || sel.Criticality > 4 || sel.InternetFacing < -1 || sel.InternetFacing > 1 {
			t.Fatalf("%q parsed out of range: %+v", s, sel)
		}
		if sel == (exception.Selector{Criticality: -1, InternetFacing: -1}) {
			t.Fatalf("%q parsed to a selector that selects everything", s)
		}
	})
}

func TestPolicyCapCHDB(t *testing.T)       { testPolicyCap(t, testenv.CHDBStore(t)) }
func TestPolicyCapClickHouse(t *testing.T) { testPolicyCap(t, testenv.ServerStore(t)) }

// testPolicyCap: the active policy's exceptions.max_duration caps
// expiries, read at each request; without it the book's default holds.
func testPolicyCap(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	log := audit.New(st)
	book := exception.New(st, log, exception.Config{Cap: func(ctx context.Context) (time.Duration, error) {
		return policy.ExceptionCap(ctx, st)
	}})
	req := exception.Request{Advisory: "CVE-2023-38545", Package: "curl", Owner: "web team", Reason: "vendor build pending",
		Requester: "alice", ExpiresIn: 45 * 24 * time.Hour}
	if _, err := book.Request(ctx, req); err != nil {
		t.Fatalf("45 days with no policy (default cap 90 days): %v", err)
	}
	src := "sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\nexceptions:\n  max_duration: 30d\n"
	if _, err := policy.Apply(ctx, st, log, "cap.yaml", []byte(src), "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := book.Request(ctx, req)
	if !errors.Is(err, exception.ErrInvalid) || !strings.Contains(err.Error(), "cap of 30 days") {
		t.Fatalf("45 days under a 30-day policy cap: %v, want a refusal naming the cap", err)
	}
	req.ExpiresIn = 30 * 24 * time.Hour
	if _, err := book.Request(ctx, req); err != nil {
		t.Fatalf("30 days under a 30-day cap: %v", err)
	}
}
