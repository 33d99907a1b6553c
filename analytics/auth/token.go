package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// A token reads pgt_<id>_<secret>: id is 12 hex digits, public (listed,
// logged, used to revoke); secret is 32 random bytes in unpadded base64url.
// Only the SHA-256 of the whole token is stored. A fast hash is enough: the
// token carries 256 random bits, so there is nothing to brute-force, unlike
// a password.
const tokenPrefix = "pgt_"

var tokenRE = regexp.MustCompile(`^pgt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$`)

// Table is the tokens' table.
const Table = "api_tokens"

var columns = []string{"token_id", "version", "name", "role", "token_hash", "created_by", "created_at", "expires_at", "revoked_at", "revoked_by"}

// Token is a stored token, without its secret.
type Token struct {
	ID        string    `json:"id"`
	Version   uint32    `json:"-"`
	Name      string    `json:"name"`
	Role      Role      `json:"-"`
	RoleName  string    `json:"role"`
	Hash      string    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() && t.RevokedAt.Unix() != 0 }

// State is "active", "expired" or "revoked" at now.
func (t Token) State(now time.Time) string {
	switch {
	case t.Revoked():
		return "revoked"
	case !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "active"
}

// Errors of Verify. Each means 401 to an API client; which one it was goes
// to the log only, so a caller cannot probe which tokens exist.
var (
	ErrMalformed = errors.New("not a patchgrid token")
	ErrUnknown   = errors.New("unknown token")
	ErrExpired   = errors.New("token expired")
	ErrRevoked   = errors.New("token revoked")
)

// MaxTTL is the longest a token may live: a forgotten token expires.
const MaxTTL = 366 * 24 * time.Hour

// Tokens creates, lists, revokes and verifies API tokens in a store.
type Tokens struct {
	st    store.Store
	audit *audit.Log
	now   func() time.Time
	// cacheTTL: how long a verified token is trusted without asking the
	// store again. Revoke through this Tokens takes effect at once; a
	// revocation by another process within cacheTTL.
	cacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cached // by token hash
}

type cached struct {
	tok Token
	at  time.Time
}

// maxCached bounds the verification cache; it is cleared when full.
const maxCached = 4096

// Options configures New. Zero values are defaults.
type Options struct {
	// CacheTTL is how long a verified token is trusted before the store
	// is asked again (a revocation by another process takes effect within
	// it). Default 10s; negative: no cache.
	CacheTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Audit, when set, records every creation and revocation
	// (token.create, token.revoke) in the audit trail.
	Audit *audit.Log
}

// New returns the tokens of st (the table comes from the migrations).
func New(st store.Store, opt Options) *Tokens {
	if opt.CacheTTL == 0 {
		opt.CacheTTL = 10 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Tokens{st: st, audit: opt.Audit, now: opt.Now, cacheTTL: opt.CacheTTL, cache: map[string]cached{}}
}

// CreateRequest describes a new token.
type CreateRequest struct {
	Name      string        // required: who or what holds it (a person, "grafana", "ci")
	Role      Role          // required
	TTL       time.Duration // required: 0 < TTL <= MaxTTL
	CreatedBy string        // who created it, for the record
}

// Create makes a token and returns it (the only time the secret is
// available) with its record.
func (t *Tokens) Create(ctx context.Context, req CreateRequest) (string, Token, error) {
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "" || len(name) > 200:
		return "", Token{}, errors.New("create token: a name of 1..200 characters is required")
	case !req.Role.Valid():
		return "", Token{}, fmt.Errorf("create token %q: invalid role %v", name, req.Role)
	case req.TTL <= 0 || req.TTL > MaxTTL:
		return "", Token{}, fmt.Errorf("create token %q: expiry %v out of range (more than 0, at most %v)", name, req.TTL, MaxTTL)
	}
	var raw [38]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("create token %q: %w", name, err)
	}
	id := hex.EncodeToString(raw[:6])
	secret := tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(raw[6:])
	now := t.now().UTC().Truncate(time.Second)
	tok := Token{ID: id, Version: 1, Name: name, Role: req.Role, RoleName: req.Role.String(), Hash: hashOf(secret),
		CreatedBy: req.CreatedBy, CreatedAt: now, ExpiresAt: now.Add(req.TTL).Truncate(time.Second)}
	if err := t.write(ctx, tok); err != nil {
		return "", Token{}, fmt.Errorf("create token %q: %w", name, err)
	}
	if err := t.record(ctx, "token.create", nil, tok); err != nil {
		return "", Token{}, fmt.Errorf("create token %q: %w", name, err)
	}
	return secret, tok, nil
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func (t *Tokens) write(ctx context.Context, tok Token) error {
	return t.st.Insert(ctx, Table, columns, [][]any{{tok.ID, tok.Version, tok.Name, tok.RoleName, tok.Hash, tok.CreatedBy,
		tok.CreatedAt, tok.ExpiresAt, revokedAt(tok), tok.RevokedBy}})
}

func revokedAt(tok Token) time.Time {
	if tok.Revoked() {
		return tok.RevokedAt
	}
	return time.Unix(0, 0).UTC()
}

const selectTokens = "SELECT token_id, version, name, role, token_hash, created_by, created_at, expires_at, revoked_at, revoked_by FROM " + Table

// get returns the current version of token id.
func (t *Tokens) get(ctx context.Context, id string) (Token, bool, error) {
	rows, err := t.st.Query(ctx, selectTokens+" WHERE token_id = ? ORDER BY version DESC LIMIT 1", id)
	if err != nil {
		return Token{}, false, err
	}
	toks, err := scanTokens(rows)
	if err != nil || len(toks) == 0 {
		return Token{}, false, err
	}
	return toks[0], true, nil
}

func scanTokens(rows store.Rows) ([]Token, error) {
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var tok Token
		if err := rows.Scan(&tok.ID, &tok.Version, &tok.Name, &tok.RoleName, &tok.Hash, &tok.CreatedBy,
			&tok.CreatedAt, &tok.ExpiresAt, &tok.RevokedAt, &tok.RevokedBy); err != nil {
			return nil, err
		}
		// A role the vocabulary does not know (a row written by a newer
		// version) grants nothing: Role stays 0, which Allows nothing.
		tok.Role, _ = ParseRole(tok.RoleName)
		if !tok.Revoked() {
			tok.RevokedAt = time.Time{}
		}
		out = append(out, tok)
	}
	return out, rows.Err()
}

// List returns the current version of every token, newest first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := t.st.Query(ctx, selectTokens)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	all, err := scanTokens(rows)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	// Merges may not have collapsed versions yet: keep the highest.
	cur := map[string]Token{}
	for _, tok := range all {
		if c, ok := cur[tok.ID]; !ok || tok.Version > c.Version {
			cur[tok.ID] = tok
		}
	}
	out := make([]Token, 0, len(cur))
	for _, tok := range cur {
		out = append(out, tok)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Revoke revokes token id (its public id, or the whole token). Revoking a
// revoked token is not an error; an unknown id is.
func (t *Tokens) Revoke(ctx context.Context, id, by string) (Token, error) {
	if m := tokenRE.FindStringSubmatch(id); m != nil {
		id = m[1]
	}
	tok, ok, err := t.get(ctx, id)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	if !ok {
		return Token{}, fmt.Errorf("revoke token %q: %w", id, ErrUnknown)
	}
	t.forget(tok.Hash)
	if tok.Revoked() {
		return tok, nil
	}
	before := tok
	tok.Version++
	tok.RevokedAt, tok.RevokedBy = t.now().UTC().Truncate(time.Second), by
	if err := t.write(ctx, tok); err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	if err := t.record(ctx, "token.revoke", &before, tok); err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return tok, nil
}

// record appends a change to the audit trail. The states recorded hold no
// secret: Token's hash is not part of its JSON.
func (t *Tokens) record(ctx context.Context, action string, before *Token, after Token) error {
	if t.audit == nil {
		return nil
	}
	actor := after.CreatedBy
	if action == "token.revoke" {
		actor = after.RevokedBy
	}
	if actor == "" {
		actor = "patchgrid"
	}
	ev := audit.Event{Actor: actor, Action: action, Object: "token:" + after.ID, After: after,
		Detail: fmt.Sprintf("%s token %q (%s, expires %s)", strings.TrimPrefix(action, "token."), after.Name, after.RoleName, after.ExpiresAt.Format(time.DateOnly))}
	if before != nil {
		ev.Before = *before
	}
	if _, err := t.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func (t *Tokens) forget(hash string) {
	t.mu.Lock()
	delete(t.cache, hash)
	t.mu.Unlock()
}

// Verify returns the token a bearer secret belongs to, or an error: one of
// ErrMalformed, ErrUnknown, ErrExpired, ErrRevoked, or a store failure
// (anything else, which is not the client's fault).
func (t *Tokens) Verify(ctx context.Context, secret string) (Token, error) {
	m := tokenRE.FindStringSubmatch(secret)
	if m == nil {
		return Token{}, ErrMalformed
	}
	hash := hashOf(secret)
	now := t.now()
	t.mu.Lock()
	c, hit := t.cache[hash]
	t.mu.Unlock()
	tok := c.tok
	if !hit || now.Sub(c.at) >= t.cacheTTL {
		var ok bool
		var err error
		tok, ok, err = t.get(ctx, m[1])
		if err != nil {
			return Token{}, fmt.Errorf("verify token %s: %w", m[1], err)
		}
		// Compare in constant time: the id is public, the hash is not.
		if !ok || subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(hash)) != 1 {
			return Token{}, ErrUnknown
		}
		if t.cacheTTL > 0 {
			t.mu.Lock()
			if len(t.cache) >= maxCached {
				clear(t.cache)
			}
			t.cache[hash] = cached{tok: tok, at: now}
			t.mu.Unlock()
		}
	}
	switch tok.State(now) {
	case "revoked":
		return tok, ErrRevoked
	case "expired":
		return tok, ErrExpired
	}
	return tok, nil
}
