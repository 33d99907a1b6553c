package debian

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "advisories", "debian-tracker", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestListGolden(t *testing.T) {
	advs, probs, err := ParseList(read(t, "vunnel-fixture-DSA-list-excerpt.txt"), "DSA-list-excerpt.txt")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	feedtest.Golden(t, "DSA-list-excerpt", advs)
}

func TestLists(t *testing.T) {
	for _, tc := range []struct {
		file    string
		entries int
		last    string
	}{{"DSA-list.txt", 5406, "DSA-5380-1"}, {"DLA-list.txt", 3534, "DLA-3380-1"}} {
		advs, probs, err := ParseList(read(t, tc.file), tc.file)
		if err != nil || len(probs) > 0 {
			t.Fatalf("%s: %v %v", tc.file, err, probs)
		}
		if len(advs) != tc.entries || advs[0].ID != tc.last {
			t.Errorf("%s: %d entries, first %s; want %d, %s", tc.file, len(advs), advs[0].ID, tc.entries, tc.last)
		}
		for i := range advs {
			feedtest.Key(t, &advs[i])
		}
	}
	advs, _, _ := ParseList(read(t, "DSA-list.txt"), "DSA-list.txt")
	a := advs[0] // [29 Mar 2023] DSA-5380-1 xorg-server - security update
	feedtest.Key(t, &a)
	if a.Published.Format("2006-01-02") != "2023-03-29" || !slices.Equal(a.CVEs(), []string{"CVE-2023-1393"}) {
		t.Errorf("%+v", a)
	}
	if r := a.Ranges[0]; r.Ecosystem != "Debian:11" || r.Package != "xorg-server" || r.Fixed != "2:1.20.11-1+deb11u6" || r.Status != feed.StatusAffected || r.Comparator != "dpkg" {
		t.Errorf("%+v", r)
	}
	if !feedtest.Affected(t, &a, "Debian:11", "xorg-server", "2:1.20.11-1+deb11u5") || feedtest.Affected(t, &a, "Debian:11", "xorg-server", "2:1.20.11-1+deb11u6") {
		t.Error("fixed boundary")
	}
}

func TestListStates(t *testing.T) {
	in := "[01 Jan 2010] DSA-1-1 p - t\n\t{CVE-2010-0001}\n\t[lenny] - p <not-affected> (Vulnerable code not present)\n\t[squeeze] - p <unfixed>\n\t[etch] - p <end-of-life>\n\t[bookworm] - p 1.0-1\n\t[lenny] bad line\nstray\n[bad header\n"
	advs, probs, err := ParseList([]byte(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 3 {
		t.Errorf("problems %v", probs)
	}
	var got []string
	for _, r := range advs[0].Ranges {
		got = append(got, r.Ecosystem+" "+r.Status+" "+r.Fixed)
	}
	want := []string{"Debian:5 not_affected ", "Debian:6 unfixed ", "Debian:4 will_not_fix ", "Debian:12 affected 1.0-1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTrackerJSON(t *testing.T) {
	advs, probs, err := ParseTrackerJSON(read(t, "vunnel-fixture-debian-tracker-excerpt.json"), "tracker.json")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	feedtest.Golden(t, "tracker-excerpt", advs)
	for i := range advs {
		feedtest.Key(t, &advs[i])
	}
}

// TestTrackerUrgencyPerRelease: the tracker rates a CVE per release; the
// record keeps each release's urgency (worst over packages) in Specific,
// keyed by ecosystem, and the worst of all as its Severity. Urgencies that
// are no rating leave their release out.
func TestTrackerUrgencyPerRelease(t *testing.T) {
	rel := func(status, fixed, urgency string) string {
		return `{"status":"` + status + `","fixed_version":"` + fixed + `","urgency":"` + urgency + `"}`
	}
	for _, tc := range []struct {
		name, json, severity, specific string
	}{
		{"two releases rated differently",
			`{"curl":{"CVE-1":{"releases":{"bookworm":` + rel("resolved", "7.88.1-10+deb12u4", "low") + `,"bullseye":` + rel("open", "", "high**") + `}}}}`,
			"high", `{"urgency":{"Debian:11":"high","Debian:12":"low"}}`},
		{"unimportant is low, not yet assigned and end-of-life are absent",
			`{"p":{"CVE-1":{"releases":{"trixie":` + rel("open", "", "unimportant") + `,"bookworm":` + rel("open", "", "not yet assigned") + `,"buster":` + rel("open", "", "end-of-life") + `}}}}`,
			"low", `{"urgency":{"Debian:13":"low"}}`},
		{"worst over packages per release",
			`{"a":{"CVE-1":{"releases":{"bookworm":` + rel("open", "", "low") + `}}},"b":{"CVE-1":{"releases":{"bookworm":` + rel("open", "", "medium") + `,"sid":` + rel("open", "", "low") + `}}}}`,
			"medium", `{"urgency":{"Debian:12":"medium","Debian:sid":"low"}}`},
		{"no release rated",
			`{"p":{"CVE-1":{"releases":{"bookworm":` + rel("open", "", "not yet assigned") + `}}}}`,
			"unknown", ""},
		{"skipped status carries no urgency",
			`{"p":{"CVE-1":{"releases":{"bookworm":` + rel("resolved", "", "high") + `,"bullseye":` + rel("open", "", "low") + `}}}}`,
			"low", `{"urgency":{"Debian:11":"low"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			advs, _, err := ParseTrackerJSON([]byte(tc.json), "x")
			if err != nil || len(advs) != 1 {
				t.Fatalf("%v: %d records", err, len(advs))
			}
			if a := advs[0]; a.Severity != tc.severity || a.Specific != tc.specific {
				t.Errorf("severity %q specific %q; want %q %q", a.Severity, a.Specific, tc.severity, tc.specific)
			}
		})
	}
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("[01 Aug 2002] DSA-141 mpack - buffer overflow\n\t{CVE-2002-1425}\n\t[woody] - mpack 1.5-7woody2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = ParseList(data, "fuzz")
	})
}

func FuzzParseTrackerJSON(f *testing.F) {
	f.Add([]byte(`{"p":{"CVE-1":{"description":"d","releases":{"bookworm":{"status":"resolved","fixed_version":"1.0-1","urgency":"high**"}}},"CVE-2":{"releases":[]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = ParseTrackerJSON(data, "fuzz")
	})
}
