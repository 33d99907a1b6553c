package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// FuzzParseRole: role names come from the command line (token create
// --role) and from rows of api_tokens. A name is accepted only as one of
// Roles' names (case and surrounding space aside), and every accepted role
// reads back to itself.
func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"viewer", "ANALYST", " approver ", "admin\n", "", "root", "role(5)", "admins", "v", "\u212aelvin", "adm\u0130n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		if err != nil {
			if r != 0 || r.Valid() || r.Allows(Viewer) {
				t.Fatalf("ParseRole(%q) failed (%v) but returned role %v", s, err, r)
			}
			return
		}
		if !r.Valid() || !strings.EqualFold(strings.TrimSpace(s), r.String()) {
			t.Fatalf("ParseRole(%q) = %v", s, r)
		}
		if back, err := ParseRole(r.String()); err != nil || back != r {
			t.Fatalf("ParseRole(%q) = %v does not read back: %v, %v", s, r, back, err)
		}
		if !r.Allows(Viewer) || r.Allows(r+1) {
			t.Fatalf("%v: wrong place in the order", r)
		}
	})
}

// knownSecret is the one token the fuzzed store holds (a well-formed
// token: pgt_, 12 hex digits, 43 base64url characters).
const knownSecret = "pgt_0123456789ab_" + "AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDD-_x"

// FuzzVerify: the bearer secret is whatever a client sends in its
// Authorization header. Verify must answer ErrMalformed for anything that
// is not a token, without asking the store; a well-formed secret is looked
// up by its own id; and only the stored token's exact secret verifies.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{knownSecret, knownSecret + "\n", " " + knownSecret, strings.ToUpper(knownSecret),
		"pgt_0123456789ab_" + strings.Repeat("A", 43), "pgt_ffffffffffff_" + strings.Repeat("-", 43), "pgt_0123456789AB_" + strings.Repeat("A", 43),
		"pgt__", "", "Bearer " + knownSecret, "pgt_0123456789ab_" + strings.Repeat("A", 44)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		st := &tokenStore{}
		now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		tokens := New(st, Options{Now: func() time.Time { return now }, CacheTTL: -1})
		tok, err := tokens.Verify(context.Background(), secret)
		wellFormed := tokenRE.MatchString(secret)
		switch {
		case !wellFormed:
			if !errors.Is(err, ErrMalformed) || st.asked != nil {
				t.Fatalf("Verify(%q): %v, store asked: %v; want ErrMalformed without a query", secret, err, st.asked != nil)
			}
		case st.asked == nil || *st.asked != secret[len(tokenPrefix):len(tokenPrefix)+12]:
			t.Fatalf("Verify(%q) did not look up its own id (asked: %v)", secret, st.asked != nil)
		case secret == knownSecret:
			if err != nil || tok.ID != "0123456789ab" || tok.Role != Analyst {
				t.Fatalf("Verify(the stored token) = %+v, %v", tok, err)
			}
		case !errors.Is(err, ErrUnknown) || tok.Role != 0:
			t.Fatalf("Verify(%q), not the stored token: %+v, %v; want ErrUnknown", secret, tok, err)
		}
	})
}

// tokenStore holds one token row (knownSecret's) and records the id it
// was asked for.
type tokenStore struct {
	store.Store
	asked *string
}

func (s *tokenStore) Query(_ context.Context, query string, args ...any) (store.Rows, error) {
	if len(args) != 1 || !strings.HasPrefix(query, selectTokens) {
		return nil, errors.New("unexpected query")
	}
	id, _ := args[0].(string)
	s.asked = &id
	r := &tokenRows{}
	if id == "0123456789ab" {
		r.rows = [][]any{{id, uint32(1), "fuzz", "analyst", hashOf(knownSecret), "test",
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 0).UTC(), ""}}
	}
	return r, nil
}

type tokenRows struct {
	store.Rows
	rows [][]any
	cur  []any
}

func (r *tokenRows) Next() bool {
	if len(r.rows) == 0 {
		return false
	}
	r.cur, r.rows = r.rows[0], r.rows[1:]
	return true
}

func (r *tokenRows) Scan(dest ...any) error {
	if len(dest) != len(r.cur) {
		return errors.New("scan: column count")
	}
	for i, d := range dest {
		switch p := d.(type) {
		case *string:
			*p = r.cur[i].(string)
		case *uint32:
			*p = r.cur[i].(uint32)
		case *time.Time:
			*p = r.cur[i].(time.Time)
		default:
			return errors.New("scan: unexpected destination type")
		}
	}
	return nil
}

func (r *tokenRows) Err() error   { return nil }
func (r *tokenRows) Close() error { return nil }
