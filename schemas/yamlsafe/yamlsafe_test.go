package yamlsafe

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// laughs builds the classic "billion laughs": levels anchors, each a list
// of 9 aliases of the previous one (9^levels leaves from ~50 bytes a level).
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("id: PYSEC-0000-1\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		p := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(p+", ", 8) + p + "]\n")
	}
	return b.String()
}

func TestLimits(t *testing.T) {
	type doc struct {
		ID     string         `yaml:"id"`
		Shared map[string]any `yaml:"shared"`
		Rules  []struct {
			Name string         `yaml:"name"`
			With map[string]any `yaml:"with"`
		} `yaml:"rules"`
	}
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	var wide strings.Builder
	for i := range 10_001 {
		wide.WriteString("k" + strings.Repeat("x", 3) + string(rune('a'+i%26)) + itoa(i) + ": 1\n")
	}
	tests := []struct {
		name    string
		in      string
		lim     Limits
		wantErr string // "" for success
		limit   bool   // the error wraps ErrLimit
	}{
		{name: "plain", in: "id: GHSA-1\nrules:\n- name: a\n"},
		{name: "empty", in: ""},
		{name: "modest anchors", in: "shared: &s {ring: 1, days: 7}\nrules:\n- name: a\n  with: *s\n- name: b\n  with: *s\n"},
		{name: "merge key", in: "shared: &s {ring: 1}\nrules:\n- name: a\n  with: {<<: *s, days: 3}\n"},
		{name: "billion laughs", in: laughs(9), wantErr: "more than 2000000 nodes with aliases expanded", limit: true},
		{name: "alias share", in: laughs(5), wantErr: "aliases expand to 672588 nodes (limit 1000)", lim: Limits{MaxAliasNodes: 1000}, limit: true},
		{name: "laughs at the node cap", in: laughs(6), lim: Limits{MaxNodes: 1000}, wantErr: "nodes with aliases expanded", limit: true},
		{name: "too large", in: "id: " + strings.Repeat("x", 100), lim: Limits{MaxBytes: 50}, wantErr: "more than 50 bytes", limit: true},
		{name: "too deep", in: "id: x\nrules: " + deep + "\n", wantErr: "nesting deeper than 256", limit: true},
		{name: "too wide", in: wide.String(), wantErr: "mapping with 10001 keys", limit: true},
		{name: "syntax", in: "id: [unclosed\n", wantErr: "yaml:"},
		{name: "self reference", in: "a: &a [*a]\n", wantErr: "yaml:"},
		{name: "type mismatch", in: "rules: 3\n", wantErr: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := tt.lim.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Unmarshal error = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrLimit); got != tt.limit {
				t.Fatalf("errors.Is(%v, ErrLimit) = %v, want %v", err, got, tt.limit)
			}
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestAnchorsDecodeLikeYAML(t *testing.T) {
	in := []byte("shared: &s {ring: 1, days: 7}\nrules:\n- name: a\n  with: *s\n- name: b\n  with: {<<: *s, days: 3}\n")
	var want, got map[string]any
	if err := yaml.Unmarshal(in, &want); err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(in, &got); err != nil {
		t.Fatal(err)
	}
	wb, _ := yaml.Marshal(want)
	gb, _ := yaml.Marshal(got)
	if string(wb) != string(gb) {
		t.Fatalf("Unmarshal = %s, yaml.Unmarshal = %s", gb, wb)
	}
}

// TestBillionLaughsCost is the probe: a ~500-byte document whose
// aliases expand to 9^9 (387 million) scalars. It must be refused before
// anything is expanded, costing kilobytes, not gigabytes.
func TestBillionLaughsCost(t *testing.T) {
	in := []byte(laughs(9))
	if len(in) > 600 {
		t.Fatalf("probe is %d bytes", len(in))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var v map[string]any
	err := Unmarshal(in, &v)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("Unmarshal = %v, want ErrLimit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("refusing the probe allocated %d bytes, want < 1 MiB", alloc)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	var v struct {
		Ignore []struct {
			ID string `yaml:"id"`
		} `yaml:"ignore"`
	}
	if err := UnmarshalStrict([]byte("ignore:\n- id: CVE-1\n"), &v); err != nil || len(v.Ignore) != 1 {
		t.Fatalf("UnmarshalStrict = %+v, %v", v, err)
	}
	if err := UnmarshalStrict([]byte("ignore:\n- id: CVE-1\n  reson: typo\n"), &v); err == nil || !strings.Contains(err.Error(), "reson") {
		t.Fatalf("UnmarshalStrict with an unknown key = %v", err)
	}
	if err := UnmarshalStrict([]byte(laughs(9)), &v); !errors.Is(err, ErrLimit) {
		t.Fatalf("UnmarshalStrict of the billion laughs = %v", err)
	}
	if err := UnmarshalStrict(nil, &v); err != nil {
		t.Fatalf("UnmarshalStrict of nothing = %v", err)
	}
}

func TestUnmarshalFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(laughs(9)), 0o644); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	err := UnmarshalFile(p, &v)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), p) {
		t.Fatalf("UnmarshalFile = %v, want ErrLimit naming %s", err, p)
	}
	if err := (Limits{MaxBytes: 10}).UnmarshalFile(p, &v); !errors.Is(err, ErrLimit) {
		t.Fatalf("UnmarshalFile over MaxBytes = %v, want ErrLimit", err)
	}
	if err := UnmarshalFile(filepath.Join(dir, "missing.yaml"), &v); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("UnmarshalFile of a missing file = %v", err)
	}
}

// FuzzUnmarshal: any input is decoded or refused with an error, never a
// panic, and an accepted input stays within the node budget.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{"id: x\n", laughs(3), "a: &a {b: 1}\nc: *a\nd: {<<: *a}\n", "[[[[]]]]", "- &x 1\n- *x\n", "a: !!binary aGVsbG8=\n"} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxNodes: 10_000, MaxAliasNodes: 1000}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		_ = lim.Unmarshal(data, &v)
		n, err := lim.Parse(data)
		if err == nil && n.Kind != 0 {
			var m measure
			m.lim, m.sizes = lim.withDefaults(), map[*yaml.Node]int64{}
			if s, err := m.size(n, 0); err != nil || s > lim.MaxNodes {
				t.Fatalf("accepted document measures %d, %v", s, err)
			}
		}
	})
}
