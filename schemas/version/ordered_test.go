package version

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readLines(t *testing.T, rel string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedData(t), "versions", rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// TestPEP440Ordered: packaging's list is in strictly ascending order.
func TestPEP440Ordered(t *testing.T) {
	c, _ := Lookup("PyPI")
	var prev []byte
	prevV := ""
	for i, v := range readLines(t, "pep440/pep440-ordered.txt") {
		k, err := c.AppendKey(nil, v)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			t.Errorf("%q should sort before %q", prevV, v)
		}
		prev, prevV = k, v
	}
}

// TestGoOrdered: golang.org/x/mod/semver's table; rows ascend, rows with the
// same canonical form are equal, an empty canonical form means invalid.
func TestGoOrdered(t *testing.T) {
	c, _ := Lookup("Go")
	var prev []byte
	prevCanon, prevV := "", ""
	for _, l := range readLines(t, "go/go-semver-ordered.tsv") {
		v, canon, _ := strings.Cut(l, "\t")
		k, err := c.AppendKey(nil, v)
		if canon == "" {
			if err == nil {
				t.Errorf("%q: want an error, got key %x", v, k)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		// The same version without its 'v', as OSV writes it.
		if k2, err := c.AppendKey(nil, v[1:]); err != nil || !bytes.Equal(k, k2) {
			t.Errorf("%q without v: key %x, %v; want %x", v[1:], k2, err, k)
		}
		if prev != nil {
			want := -1
			if canon == prevCanon {
				want = 0
			}
			if got := bytes.Compare(prev, k); got != want {
				t.Errorf("%q vs %q: got %d, want %d", prevV, v, got, want)
			}
		}
		prev, prevCanon, prevV = k, canon, v
	}
}

// apkInvalidAccepted are versions apk-tools 3 calls invalid that we order:
// apk-tools 2 (Alpine 3.x, whose `apk version -t` produced the generated
// vectors) accepts a number after the letter, and real packages use it
// (openssh 6.6.2p1).
var apkInvalidAccepted = map[string]bool{"0.1a1": true}

func TestAPKValidity(t *testing.T) {
	c, _ := Lookup("Alpine")
	for _, v := range readLines(t, "apk/apk-valid-versions.txt") {
		if _, err := c.AppendKey(nil, v); err != nil {
			t.Errorf("valid %q: %v", v, err)
		}
	}
	for _, v := range readLines(t, "apk/apk-invalid-versions.txt") {
		_, err := c.AppendKey(nil, v)
		if apkInvalidAccepted[v] {
			if err != nil {
				t.Errorf("%q: %v", v, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("invalid %q: got a key", v)
		}
	}
}
