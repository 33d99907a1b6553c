// Package auth holds who may call patchgrid's HTTP API: the role
// vocabulary (defined here once; API routes declare the role they need)
// and bearer tokens, stored hashed in the api_tokens table
// (schemas/migrations/0009_tokens.sql), each with an expiry, revocable.
package auth

import (
	"fmt"
	"strings"
)

// Role is what a token may do. Roles are ordered: each may do everything
// the roles below it may (SECURITY.md has the table).
type Role uint8

const (
	// Viewer reads: KPIs, findings, hosts, risk, exports, plans.
	Viewer Role = iota + 1
	// Analyst also writes day-to-day records: deployment outcomes,
	// exception requests, plan runs.
	Analyst
	// Approver also decides: approves or rejects exceptions and plans.
	Approver
	// Admin also changes policy and manages tokens.
	Admin
)

// Roles lists every role, least privileged first.
var Roles = []Role{Viewer, Analyst, Approver, Admin}

var roleNames = [...]string{Viewer: "viewer", Analyst: "analyst", Approver: "approver", Admin: "admin"}

func (r Role) String() string {
	if r >= Viewer && r <= Admin {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r >= Viewer && r <= Admin }

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.Valid() && need.Valid() && r >= need }

// ParseRole reads a role name (case-insensitive).
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if strings.EqualFold(strings.TrimSpace(s), r.String()) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want viewer, analyst, approver or admin)", s)
}
