package feeds

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFetchLimits: a download is refused when it announces or sends more
// than MaxBytes, stalls longer than IdleTimeout, ends short of its
// Content-Length, or does not match the checksum the server publishes;
// a refused download never replaces the cached copy.
func TestFetchLimits(t *testing.T) {
	body := []byte(`{"catalogVersion":"1","count":0,"vulnerabilities":[]}`)
	md := md5.Sum(body)
	crc := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	goodHash := "crc32c=" + base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}) +
		",md5=" + base64.StdEncoding.EncodeToString(md[:])
	badMD5 := md5.Sum([]byte("other"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good.json":
			w.Header().Set("X-Goog-Hash", goodHash)
			w.Write(body)
		case "/announced-big.json":
			w.Header().Set("Content-Length", strconv.Itoa(10<<20))
			w.WriteHeader(http.StatusOK)
		case "/chunked-big.json":
			// No Content-Length: only counting the bytes can stop it.
			for range 64 {
				w.Write(make([]byte, 1024))
				w.(http.Flusher).Flush()
			}
		case "/stall.json":
			w.Write(body[:10])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/short.json":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+10))
			w.Write(body)
		case "/bad-md5.json":
			w.Header().Set("X-Goog-Hash", "md5="+base64.StdEncoding.EncodeToString(badMD5[:]))
			w.Write(body)
		case "/bad-header.json":
			w.Header().Set("X-Goog-Hash", "md5=!!!")
			w.Write(body)
		}
	}))
	defer srv.Close()
	f := &Fetcher{Client: srv.Client(), CacheDir: t.TempDir(), MaxBytes: 32 << 10, IdleTimeout: 300 * time.Millisecond}
	ctx := context.Background()
	if _, _, err := f.Fetch(ctx, srv.URL+"/good.json"); err != nil {
		t.Fatalf("good download with checksums: %v", err)
	}
	tests := []struct {
		path, want string
		limit      bool
	}{
		{"/announced-big.json", "10485760 bytes announced", true},
		{"/chunked-big.json", "more than 32768 bytes", true},
		{"/stall.json", "no data for 300ms", false},
		{"/short.json", "unexpected EOF", false},
		{"/bad-md5.json", "the server published", false},
		{"/bad-header.json", "malformed md5 checksum", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			start := time.Now()
			file, _, err := f.Fetch(ctx, srv.URL+tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Fetch = %q, %v; want an error naming the URL and containing %q", file, err, tt.want)
			}
			if errors.Is(err, ErrInputLimit) != tt.limit {
				t.Errorf("errors.Is(ErrInputLimit) = %v, want %v", !tt.limit, tt.limit)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	// The overall timeout, independent of the idle one.
	f.Timeout, f.IdleTimeout = 200*time.Millisecond, time.Minute
	if _, _, err := f.Fetch(ctx, srv.URL+"/stall.json"); err == nil || !strings.Contains(err.Error(), "longer than 200ms") {
		t.Errorf("stalled download under Timeout: %v", err)
	}
	// Nothing of the refused downloads was cached (no part files either).
	var files []string
	filepath.WalkDir(f.CacheDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, filepath.Base(p))
		}
		return nil
	})
	if slices.Sort(files); strings.Join(files, ",") != "good.json,meta.json" {
		t.Errorf("cache holds %v, want only good.json and its meta.json", files)
	}
}
