package feeds

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Official feed URLs, loaded by `feeds load --online`.
const (
	// OSVURL is the per-ecosystem OSV export: a flat zip of OSV JSON
	// records (the layout osv-scanner's offline mode reads).
	OSVURL  = "https://osv-vulnerabilities.storage.googleapis.com/%s/all.zip"
	KEVURL  = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	EPSSURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
	// DebianTrackerURL is the Debian security tracker's JSON export:
	// package → CVE → release → status, fixed version and urgency (the
	// Debian rating that comes first for Debian hosts).
	DebianTrackerURL = "https://security-tracker.debian.org/tracker/data/json"
	// CVEListV5URL is the CVE Program's cvelistV5 repository as one zip:
	// every CVE JSON 5 record (cves/YYYY/NNxxx/CVE-….json) with the CNA's
	// and CISA's (vulnrichment ADP) CVSS and SSVC.
	CVEListV5URL = "https://github.com/CVEProject/cvelistV5/archive/refs/heads/main.zip"
)

// DefaultOSVEcosystems are the OSV exports --online fetches: the
// ecosystems schemas/version can key.
var DefaultOSVEcosystems = []string{"Debian", "Ubuntu", "Alpine", "Red Hat", "AlmaLinux", "Rocky Linux", "Wolfi", "Chainguard", "npm", "crates.io", "Go", "PyPI"}

// OnlineURLs lists the official URLs for the given OSV ecosystems plus KEV,
// EPSS and the rating sources: the Debian tracker and the CVE records.
func OnlineURLs(osvEcosystems []string) []string {
	var out []string
	for _, e := range osvEcosystems {
		out = append(out, fmt.Sprintf(OSVURL, url.PathEscape(e)))
	}
	return append(out, KEVURL, EPSSURL, DebianTrackerURL, CVEListV5URL)
}

// Fetcher downloads feeds into a cache directory with conditional requests
// (ETag / Last-Modified), so an unchanged feed is not downloaded again.
//
// A download is bounded: in size (MaxBytes, checked against Content-Length
// before reading and against the bytes read), in total time (Timeout) and
// in silence (IdleTimeout: a server that stops sending is given up on
// rather than holding the load forever). When the server publishes a
// checksum of the object (Google Cloud Storage, which serves the OSV
// exports, sends x-goog-hash with md5 and crc32c; a Content-MD5 header is
// honoured too) the download is verified before it replaces the cached
// copy; a mismatch is an error and the previous copy stays.
type Fetcher struct {
	// Client does the requests. Default: a client whose transport bounds
	// connecting (30s), the TLS handshake (30s) and the wait for response
	// headers (60s).
	Client   *http.Client
	CacheDir string // required: downloads go to CacheDir/feeds
	// MaxBytes is the largest download accepted. Default 4 GiB (the
	// largest OSV export, all ecosystems together, is about 1 GiB).
	MaxBytes int64
	// Timeout bounds one whole download. Default 30 minutes.
	Timeout time.Duration
	// IdleTimeout bounds the wait for the next bytes of a body. Default 2 minutes.
	IdleTimeout time.Duration
}

func (f *Fetcher) defaults() (client *http.Client, maxBytes int64, timeout, idle time.Duration) {
	client, maxBytes, timeout, idle = f.Client, f.MaxBytes, f.Timeout, f.IdleTimeout
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	if maxBytes <= 0 {
		maxBytes = 4 << 30
	}
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	if idle <= 0 {
		idle = 2 * time.Minute
	}
	return client, maxBytes, timeout, idle
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
	client, maxBytes, timeout, idle := f.defaults()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("download took longer than %s", timeout))
	defer cancel()
	// The idle timer cancels the request when no bytes arrive for idle.
	ctx, cancelIdle := context.WithCancelCause(ctx)
	defer cancelIdle(nil)
	idleTimer := time.AfterFunc(idle, func() { cancelIdle(fmt.Errorf("no data for %s", idle)) })
	defer idleTimer.Stop()
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
	resp, err := client.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("feeds: fetching %s: %w", rawURL, causeOf(ctx, err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return file, false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, fmt.Errorf("feeds: fetching %s: %s", rawURL, resp.Status)
	case resp.ContentLength > maxBytes:
		return "", false, fmt.Errorf("feeds: fetching %s: %w: %d bytes announced (limit %d)", rawURL, ErrInputLimit, resp.ContentLength, maxBytes)
	}
	sums, err := publishedChecksums(resp.Header)
	if err != nil {
		return "", false, fmt.Errorf("feeds: fetching %s: %w", rawURL, err)
	}
	if resp.Uncompressed || strings.Contains(resp.Header.Get("Warning"), "gunzipped") {
		// The published checksums are of the stored (compressed) object,
		// not of the bytes we got after decompression in transit.
		sums = nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	tmp, err := os.CreateTemp(dir, base+".part*")
	if err != nil {
		return "", false, fmt.Errorf("feeds: cache for %s: %w", rawURL, err)
	}
	defer os.Remove(tmp.Name())
	md5h, crch := md5.New(), crc32.New(crc32.MakeTable(crc32.Castagnoli))
	body := &idleReader{r: io.LimitReader(resp.Body, maxBytes+1), timer: idleTimer, idle: idle}
	n, err := io.Copy(io.MultiWriter(tmp, md5h, crch), body)
	switch {
	case err != nil:
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: %w", rawURL, causeOf(ctx, err))
	case n > maxBytes:
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: %w: more than %d bytes", rawURL, ErrInputLimit, maxBytes)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: got %d of %d bytes", rawURL, n, resp.ContentLength)
	}
	if want := sums["md5"]; want != nil && !bytes.Equal(md5h.Sum(nil), want) {
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: md5 %x, the server published %x (retry the download)", rawURL, md5h.Sum(nil), want)
	}
	if want := sums["crc32c"]; want != nil && !bytes.Equal(crch.Sum(nil), want) {
		tmp.Close()
		return "", false, fmt.Errorf("feeds: downloading %s: crc32c %x, the server published %x (retry the download)", rawURL, crch.Sum(nil), want)
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

// idleReader pushes the idle deadline back on every read that returns data.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// causeOf replaces a context error with its cause (which timeout fired).
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

// publishedChecksums reads the object checksums a server publishes:
// Google Cloud Storage's x-goog-hash ("crc32c=<b64>,md5=<b64>", possibly
// as several header lines) and Content-MD5. A malformed value is an
// error: a checksum that cannot be checked is not silently skipped.
func publishedChecksums(h http.Header) (map[string][]byte, error) {
	out := map[string][]byte{}
	var vals []string
	for _, v := range h.Values("X-Goog-Hash") {
		vals = append(vals, strings.Split(v, ",")...)
	}
	if v := h.Get("Content-MD5"); v != "" {
		vals = append(vals, "md5="+v)
	}
	for _, v := range vals {
		alg, b64, ok := strings.Cut(strings.TrimSpace(v), "=")
		if !ok {
			return nil, fmt.Errorf("malformed checksum header %q", v)
		}
		alg = strings.ToLower(alg)
		if alg != "md5" && alg != "crc32c" {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || alg == "md5" && len(sum) != md5.Size || alg == "crc32c" && len(sum) != crc32.Size {
			return nil, fmt.Errorf("malformed %s checksum %q", alg, b64)
		}
		out[alg] = sum
	}
	return out, nil
}

// IsURL reports whether a --from location is a URL.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "https://") || strings.HasPrefix(loc, "http://")
}
