package api

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestVerdictsRoute: /api/v1/verdicts lists stale hosts with the limit
// asked for, end-of-life findings and unmatched packages.
func TestVerdictsRoute(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	old := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	if err := st.Insert(context.Background(), "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash"},
		[][]any{{"buster-1", "s", old, old, "buster", "Debian:10", "inv"}}); err != nil {
		t.Fatal(err)
	}
	tokens := auth.New(st, auth.Options{})
	secret, _, err := tokens.Create(context.Background(), auth.CreateRequest{Name: "viewer", Role: auth.Viewer, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := client{srv, secret}
	m := c.getJSON(t, "/api/v1/verdicts", 200)
	stale, _ := m["stale_hosts"].([]any)
	eol, _ := m["eol_findings"].([]any)
	if m["stale_after"] != "72h0m0s" || len(stale) != 1 || len(eol) != 1 {
		t.Fatalf("verdicts: %v", m)
	}
	if h := stale[0].(map[string]any); h["host_id"] != "buster-1" || h["os"] != "Debian:10" {
		t.Errorf("stale host %v", h)
	}
	if m = c.getJSON(t, "/api/v1/verdicts?stale_after=720h", 200); len(m["stale_hosts"].([]any)) != 0 {
		t.Errorf("stale_after=720h: %v", m["stale_hosts"])
	}
	c.getJSON(t, "/api/v1/verdicts?stale_after=soon", 400)
}
