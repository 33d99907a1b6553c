package feeds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Official feed URLs, loaded by `feeds load --online`.
const (
	// OSVURL is the per-ecosystem OSV export: a flat zip of OSV JSON
	// records (the layout osv-scanner's offline mode reads).
	OSVURL  = "https://osv-vulnerabilities.storage.googleapis.com/%s/all.zip"
	KEVURL  = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	EPSSURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
)

// DefaultOSVEcosystems are the OSV exports --online fetches: the
// ecosystems schemas/version can key.
var DefaultOSVEcosystems = []string{"Debian", "Ubuntu", "Alpine", "Red Hat", "AlmaLinux", "Rocky Linux", "Wolfi", "Chainguard", "npm", "crates.io", "Go", "PyPI"}

// OnlineURLs lists the official URLs for the given OSV ecosystems plus KEV
// and EPSS.
func OnlineURLs(osvEcosystems []string) []string {
	var out []string
	for _, e := range osvEcosystems {
		out = append(out, fmt.Sprintf(OSVURL, url.PathEscape(e)))
	}
	return append(out, KEVURL, EPSSURL)
}

// Fetcher downloads feeds into a cache directory with conditional requests
// (ETag / Last-Modified), so an unchanged feed is not downloaded again.
type Fetcher struct {
	Client   *http.Client // default http.DefaultClient
	CacheDir string       // required: downloads go to CacheDir/feeds
}

type fetchMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag"`
	LastModified string `json:"last_modified"`
}

// Fetch returns the path of the cached copy of rawURL, downloading it when
// the server has a newer one. The cached file keeps the URL's base name so
// the loader detects its format (all.zip, *.csv.gz, *.json). fresh reports
// whether a new copy was downloaded.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (file string, fresh bool, err error) {
	if f.CacheDir == "" {
		return "", false, fmt.Errorf("feeds: fetching %s: no cache directory", rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false, fmt.Errorf("feeds: %q is not an http(s) URL", rawURL)
	}
	sum := sha256.Sum256([]byte(rawURL))
	dir := filepath.Join(f.CacheDir, "feeds", hex.EncodeToString(sum[:8]))
	base := path.Base(u.Path)
	if base == "." || base == "/" || base == "" {
		base = "feed"
	}
	file = filepath.Join(dir, base)
	metaFile := filepath.Join(dir, "meta.json")
	var meta fetchMeta
	if b, err := os.ReadFile(metaFile); err == nil {
		_ = json.Unmarshal(b, &meta) // a bad cache entry just means a full download
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", false, fmt.Errorf("feeds: fetching %s: %w", rawURL, err)
	}
	if _, err := os.Stat(file); err == nil {
		if meta.ETag != "" {
			req.Header.Set("If-None-Match", meta.ETag)
		}
		if meta.LastModified != "" {
			req.Header.Set("If-Modified-Since", meta.LastModified)
		}
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("feeds: fetching %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return file, false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, fmt.Errorf("feeds: fetching %s: %s", rawURL, resp.Status)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	tmp, err := os.CreateTemp(dir, base+".part*")
	if err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: %w", rawURL, err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("feeds: downloading %s: %w", rawURL, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	meta = fetchMeta{URL: rawURL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(metaFile, b, 0o644); err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	return file, true, nil
}

// IsURL reports whether a --from location is a URL.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "https://") || strings.HasPrefix(loc, "http://")
}
