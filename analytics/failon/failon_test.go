package failon

import (
	"flag"
	"io"
	"testing"
)

func TestTrips(t *testing.T) {
	sevs := []string{"critical", "high", "medium", "low", "unknown", "none"}
	// want[threshold] lists the severities that trip it, in sevs order.
	want := map[string][]bool{
		"critical": {true, false, false, false, false, false},
		"high":     {true, true, false, false, false, false},
		"medium":   {true, true, true, false, false, false},
		"low":      {true, true, true, true, false, false},
		"unknown":  {true, true, true, true, true, false},
		"any":      {true, true, true, true, true, true},
		"":         {false, false, false, false, false, false},
	}
	for w, trips := range want {
		th, err := Parse(w)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range sevs {
			if got := th.Trips(s); got != trips[i] {
				t.Errorf("--fail-on %q, severity %s: trips = %v, want %v", w, s, got, trips[i])
			}
		}
	}
	if th, _ := Parse("HIGH"); !th.Trips("Critical") || th.Trips("medium") {
		t.Error("words and severities are case-insensitive")
	}
	if th, _ := Parse("unknown"); !th.Trips("bogus") {
		t.Error("a severity outside the vocabulary must count as unknown")
	}
}

func TestParseRejects(t *testing.T) {
	for _, w := range []string{"none", "severe", "crit"} {
		if _, err := Parse(w); err == nil {
			t.Errorf("Parse(%q) accepted", w)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var th Threshold
	fs.Var(&th, "fail-on", Usage())
	if err := fs.Parse([]string{"--fail-on", "bogus"}); err == nil {
		t.Error("flag accepted a bogus word")
	}
	if err := fs.Parse([]string{"--fail-on", "Medium"}); err != nil || th.String() != "medium" || !th.Enabled() {
		t.Errorf("flag: %v %q", err, th.String())
	}
}
