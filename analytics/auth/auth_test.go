package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, need auth.Role
		ok         bool
	}{
		{auth.Viewer, auth.Viewer, true},
		{auth.Viewer, auth.Analyst, false},
		{auth.Analyst, auth.Viewer, true},
		{auth.Analyst, auth.Approver, false},
		{auth.Approver, auth.Analyst, true},
		{auth.Approver, auth.Admin, false},
		{auth.Admin, auth.Admin, true},
		{0, auth.Viewer, false}, // a role the vocabulary does not know grants nothing
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%v allows %v = %v, want %v", tc.have, tc.need, got, tc.ok)
		}
	}
	for _, r := range auth.Roles {
		if p, err := auth.ParseRole(strings.ToUpper(r.String())); err != nil || p != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, p, err)
		}
	}
	if _, err := auth.ParseRole("root"); err == nil {
		t.Error("ParseRole accepted root")
	}
}

// migrate applies the tokens' and the audit trail's migrations only: the
// tests do not depend on the rest of the schema.
func migrate(t *testing.T, st store.Store) {
	t.Helper()
	migs, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, m := range migs {
		if m.Name != "0009_tokens" && m.Name != "0010_audit" {
			continue
		}
		for _, stmt := range m.Statements {
			if err := st.Exec(context.Background(), stmt); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
		}
		applied++
	}
	if applied != 2 {
		t.Fatalf("found %d of the 2 migrations", applied)
	}
}

// tokenLifecycle runs create, verify, list, expiry and revocation against
// a real store.
func tokenLifecycle(t *testing.T, st store.Store) {
	ctx := context.Background()
	migrate(t, st)
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	log := audit.New(st)
	toks := auth.New(st, auth.Options{Now: clock, Audit: log, CacheTTL: -1})
	secret, tok, err := toks.Create(ctx, auth.CreateRequest{Name: "grafana", Role: auth.Viewer, TTL: 24 * time.Hour, CreatedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "pgt_"+tok.ID+"_") || len(secret) != 4+12+1+43 {
		t.Fatalf("token %q (id %s)", secret, tok.ID)
	}
	// The store holds the hash, never the token.
	rows, err := st.Query(ctx, "SELECT count() FROM api_tokens WHERE position(token_hash, ?) > 0 OR position(name, ?) > 0", secret[17:], secret[17:])
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for rows.Next() {
		rows.Scan(&n)
	}
	rows.Close()
	if n != 0 {
		t.Fatal("the secret is stored")
	}
	got, err := toks.Verify(ctx, secret)
	if err != nil || got.ID != tok.ID || got.Role != auth.Viewer || got.Name != "grafana" {
		t.Fatalf("verify: %+v %v", got, err)
	}
	for _, bad := range []struct {
		secret string
		want   error
	}{
		{"", auth.ErrMalformed},
		{"Bearer x", auth.ErrMalformed},
		{wrongLast(secret), auth.ErrUnknown}, // right id, wrong secret
		{"pgt_000000000000_" + secret[17:], auth.ErrUnknown},
	} {
		if _, err := toks.Verify(ctx, bad.secret); !errors.Is(err, bad.want) {
			t.Errorf("verify %q: %v, want %v", bad.secret, err, bad.want)
		}
	}
	now = now.Add(25 * time.Hour)
	if _, err := toks.Verify(ctx, secret); !errors.Is(err, auth.ErrExpired) {
		t.Errorf("verify after expiry: %v", err)
	}
	now = now.Add(-25 * time.Hour)

	admin, atok, err := toks.Create(ctx, auth.CreateRequest{Name: "ops", Role: auth.Admin, TTL: 90 * 24 * time.Hour, CreatedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Revoke(ctx, atok.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Verify(ctx, admin); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("verify a revoked token: %v", err)
	}
	if _, err := toks.Revoke(ctx, "0123456789ab", "bob"); !errors.Is(err, auth.ErrUnknown) {
		t.Errorf("revoke unknown: %v", err)
	}
	list, err := toks.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, l := range list {
		states[l.Name+"/"+l.RoleName] = l.State(now)
	}
	if len(list) != 2 || states["grafana/viewer"] != "active" || states["ops/admin"] != "revoked" {
		t.Errorf("list: %v", states)
	}
	for _, bad := range []auth.CreateRequest{
		{Name: "", Role: auth.Viewer, TTL: time.Hour},
		{Name: "x", Role: 0, TTL: time.Hour},
		{Name: "x", Role: auth.Viewer, TTL: 0},
		{Name: "x", Role: auth.Viewer, TTL: auth.MaxTTL + time.Hour},
	} {
		if _, _, err := toks.Create(ctx, bad); err == nil {
			t.Errorf("create %+v: no error", bad)
		}
	}
	// Creation and revocation are in the audit trail, which still verifies.
	rep, err := log.Verify(ctx, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 3 || rep.Broken != nil {
		t.Errorf("audit: %+v", rep)
	}
}

func TestTokensCHDB(t *testing.T) { tokenLifecycle(t, testenv.CHDBStore(t)) }

// The 2018 server runs the same DDL and statements.
func TestTokensServer(t *testing.T) { tokenLifecycle(t, testenv.ServerStore(t)) }

// A verified token is cached; Revoke through the same Tokens drops it at
// once.
func TestVerifyCacheRevoke(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	migrate(t, st)
	toks := auth.New(st, auth.Options{CacheTTL: time.Hour})
	secret, tok, err := toks.Create(ctx, auth.CreateRequest{Name: "ci", Role: auth.Analyst, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Verify(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Revoke(ctx, secret, "me"); err != nil { // the whole token works as the id too
		t.Fatal(err)
	}
	if _, err := toks.Verify(ctx, secret); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("cached token after revoke: %v (id %s)", err, tok.ID)
	}
}

// wrongLast is secret with its last character changed (to one it is not).
func wrongLast(secret string) string {
	c := byte('A')
	if secret[len(secret)-1] == c {
		c = 'B'
	}
	return secret[:len(secret)-1] + string(c)
}
