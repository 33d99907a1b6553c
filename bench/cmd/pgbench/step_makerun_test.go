package main

import (
	"testing"
	"time"
)

func TestStageTimes(t *testing.T) {
	log := []byte(`time=2026-12-03T12:00:00Z level=INFO msg="[1/7] store"
time=2026-12-03T12:00:01Z level=INFO msg="[1/7] store done" backend=chdb took=1.25s
time=2026-12-03T12:00:09Z level=INFO msg="refresh progress" stage="refresh exposures" hosts=2500 of=10000
time=2026-12-03T12:01:44Z level=INFO msg="[7/7] refresh done" hosts=10000 exposure_rows=15600000 took=1m43.2s
time=2026-12-03T12:01:44Z level=INFO msg="[6/7] match done" versions=3 took=bogus
`)
	got := stageTimes(log)
	want := map[string]time.Duration{"store": 1250 * time.Millisecond, "refresh": 103200 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("stageTimes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("stage %s: %v, want %v", k, got[k], v)
		}
	}
}

func TestRefreshStepTimes(t *testing.T) {
	log := []byte(`time=2026-12-03T12:00:00Z level=INFO msg="refresh steps" pending=10ms segments=2.5s exposure_facts=1m5s
time=2026-12-03T12:01:44Z level=INFO msg="refresh" hosts=10000 took=1m43.2s
time=2026-12-03T12:02:00Z level=INFO msg="refresh steps" pending=20ms finding_risk=12.25s kpi_mttr=bogus
`)
	got := refreshStepTimes(log)
	want := map[string]time.Duration{"pending": 20 * time.Millisecond, "segments": 2500 * time.Millisecond,
		"exposure_facts": 65 * time.Second, "finding_risk": 12250 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("refreshStepTimes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("step %s: %v, want %v", k, got[k], v)
		}
	}
}

// TestRunPhase: the phase follows the run's log as written, in pieces
// that split lines, and a rise of the peak is charged to the phase then.
func TestRunPhase(t *testing.T) {
	var r runPhase
	var peak peakPhase
	for _, c := range []struct {
		write, phase string
		hwm          float64
	}{
		{`time=2026-12-04T12:00:00Z level=INFO msg="[1/8] store"` + "\n", "store", 100},
		{`time=2026-12-04T12:00:01Z level=INFO msg="[1/8] store done" took=1s` + "\n" + `time=2026-12-04T12:00:01Z level=INFO msg="[7/8] ref`, "store", 100},
		{`resh"` + "\n", "refresh", 900},
		{`time=2026-12-04T12:00:09Z level=INFO msg="refresh snapshots progress" tables=3 step="exposure_facts, hosts shard 1 of 2" eta=5s` + "\n", "refresh: exposure_facts, hosts shard 1 of 2", 4100},
		{`time=2026-12-04T12:00:14Z level=INFO msg="refresh snapshots progress" step=finding_risk_snapshot` + "\n", "refresh: finding_risk_snapshot", 4100},
		{`time=2026-12-04T12:01:00Z level=INFO msg="[8/8] automate"` + "\n", "automate", 3000},
	} {
		if _, err := r.Write([]byte(c.write)); err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != c.phase {
			t.Errorf("after %q: phase %q, want %q", c.write, got, c.phase)
		}
		peak.sample(c.hwm, r.String())
	}
	if want := "refresh: exposure_facts, hosts shard 1 of 2"; peak.phase != want || peak.mb != 4100 {
		t.Errorf("peak %v MB in %q, want 4100 in %q", peak.mb, peak.phase, want)
	}
}
