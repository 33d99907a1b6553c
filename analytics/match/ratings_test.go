package match

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// releaseRatingFeeds are a Debian tracker export that rates CVE-2025-9001
// low in bookworm and high in bullseye, and CVE-2025-9002 low in bullseye,
// high in trixie and not yet in bookworm; plus the OSV Debian record of
// CVE-2025-9002 (no rating of its own). analytics/kpi TestReleaseRatings
// works the same cases through the fleet's exposures.
const (
	releaseTracker = `{
 "curl": {"CVE-2025-9001": {"description": "d", "releases": {
   "bookworm": {"status": "resolved", "fixed_version": "2.0", "urgency": "low"},
   "bullseye": {"status": "resolved", "fixed_version": "2.0", "urgency": "high**"}}}},
 "openssl": {"CVE-2025-9002": {"description": "d", "releases": {
   "bookworm": {"status": "open", "urgency": "not yet assigned"},
   "bullseye": {"status": "open", "urgency": "low"},
   "trixie": {"status": "open", "urgency": "high"}}}}
}`
	releaseOSV = `{"id": "DEBIAN-CVE-2025-9002", "modified": "2025-06-01T00:00:00Z", "published": "2025-06-01T00:00:00Z",
 "affected": [
  {"package": {"ecosystem": "Debian:11", "name": "openssl"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]},
  {"package": {"ecosystem": "Debian:12", "name": "openssl"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`
)

func loadReleaseFeeds(t *testing.T, st store.Store) {
	t.Helper()
	dir := t.TempDir()
	l := &feeds.Loader{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Lookup: func(eco string) (feed.Comparator, error) { return version.Lookup(eco) }}
	for name, body := range map[string]string{"tracker.json": releaseTracker, "DEBIAN-CVE-2025-9002.json": releaseOSV} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Load(context.Background(), p); err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
	}
}

// TestMatchReleaseRatings: stdin matching gives a finding the Debian
// tracker's urgency for the input's release, as the fleet does (0020), and
// says where it comes from; a release the tracker has not rated falls back
// to the vulnerability's rating. On the 2018 server, which skips the
// analytics migrations, a match keeps the record's own severity (the
// worst over releases) with no source.
func TestMatchReleaseRatings(t *testing.T) {
	type want struct{ sev, src string }
	type key struct{ eco, pkg, adv string }
	for _, backend := range []struct {
		name string
		open func(testing.TB) store.Store
		want map[key]want
	}{
		{"chdb", testenv.CHDBStore, map[key]want{
			{"Debian:12", "curl", "CVE-2025-9001"}:           {"low", "debian-urgency:debian-tracker/CVE-2025-9001@Debian:12"},
			{"Debian:11", "curl", "CVE-2025-9001"}:           {"high", "debian-urgency:debian-tracker/CVE-2025-9001@Debian:11"},
			{"Debian:12", "openssl", "CVE-2025-9002"}:        {"high", "debian-urgency:debian-tracker/CVE-2025-9002"},
			{"Debian:12", "openssl", "DEBIAN-CVE-2025-9002"}: {"high", "debian-urgency:debian-tracker/CVE-2025-9002"},
			{"Debian:11", "openssl", "CVE-2025-9002"}:        {"low", "debian-urgency:debian-tracker/CVE-2025-9002@Debian:11"},
			{"Debian:11", "openssl", "DEBIAN-CVE-2025-9002"}: {"low", "debian-urgency:debian-tracker/CVE-2025-9002@Debian:11"},
		}},
		{"server-2018", testenv.ServerStore, map[key]want{
			{"Debian:12", "curl", "CVE-2025-9001"}:           {"high", ""},
			{"Debian:11", "curl", "CVE-2025-9001"}:           {"high", ""},
			{"Debian:12", "openssl", "CVE-2025-9002"}:        {"high", ""},
			{"Debian:12", "openssl", "DEBIAN-CVE-2025-9002"}: {"unknown", ""},
			{"Debian:11", "openssl", "CVE-2025-9002"}:        {"high", ""},
			{"Debian:11", "openssl", "DEBIAN-CVE-2025-9002"}: {"unknown", ""},
		}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			st := migrated(t, backend.open(t))
			loadReleaseFeeds(t, st)
			ins := []Input{{Ecosystem: "Debian:12", Name: "curl", Version: "1.0"}, {Ecosystem: "Debian:11", Name: "curl", Version: "1.0"},
				{Ecosystem: "Debian:12", Name: "openssl", Version: "1.0"}, {Ecosystem: "Debian:11", Name: "openssl", Version: "1.0"}}
			res, err := MatchInputs(context.Background(), st, version.Compare, ins)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for i, ms := range res {
				for _, m := range ms {
					n++
					k := key{ins[i].Ecosystem, ins[i].Name, m.AdvisoryID}
					w, ok := backend.want[k]
					if !ok {
						t.Errorf("unexpected match %+v", k)
						continue
					}
					if m.Severity != w.sev || m.SeveritySource != w.src {
						t.Errorf("%v: severity %q from %q, want %q from %q", k, m.Severity, m.SeveritySource, w.sev, w.src)
					}
				}
			}
			if n != len(backend.want) {
				t.Errorf("%d matches, want %d", n, len(backend.want))
			}
		})
	}

	// explain on a bookworm host names the same rating.
	t.Run("explain", func(t *testing.T) {
		st := migrated(t, testenv.CHDBStore(t))
		loadReleaseFeeds(t, st)
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash"},
			[][]any{{"r12", "s1", now, now, "bookworm", "Debian:12", "inv-r12"}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "match_name", "match_version", "v_key"},
			[][]any{{"inv-r12", "Debian:12", "curl", "1.0", "curl", "1.0", "k"}}); err != nil {
			t.Fatal(err)
		}
		e, err := Explain(ctx, st, version.Compare, "r12", "CVE-2025-9001", ExplainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		e.WriteTo(&b)
		if l := "a finding of debian-tracker/CVE-2025-9001 on Debian:12 has severity low (source: debian-urgency:debian-tracker/CVE-2025-9001@Debian:12)"; !strings.Contains(b.String(), l) {
			t.Errorf("explain lacks %q:\n%s", l, b.String())
		}
	})
}
