package main

import "testing"

// TestPeerInstalledForItsSteps: the peer is installed whenever a selected
// step needs it, -only peer_osv included (issue 16), and not otherwise.
func TestPeerInstalledForItsSteps(t *testing.T) {
	cfg := Config{Endpoints: []int{200}}
	for _, c := range []struct {
		only []string
		want bool
	}{
		{nil, true},
		{[]string{"peer_osv"}, true},
		{[]string{"peer"}, true},
		{[]string{"match", "peer_osv"}, true},
		{[]string{"match"}, false},
		{[]string{"scanner:dpkg"}, false},
	} {
		o := &orchestrator{only: c.only}
		if got := o.needs(cfg, "osv-scanner"); got != c.want {
			t.Errorf("-only %v: installs the peer %v, want %v", c.only, got, c.want)
		}
	}
}

// TestMemoryKillNamesPhase: a step killed at the memory cap is reported
// with the phase it was in, the one after its last progress line.
func TestMemoryKillNamesPhase(t *testing.T) {
	var p lastProgress
	p.Write([]byte("time=x level=INFO msg=\"full match\" step=match took=1s\n"))
	p.Write([]byte("time=x level=INFO msg=\"reading every host's"))
	if got, want := p.phase(), "in the phase after: msg=\"full match\" step=match took=1s"; got != want {
		t.Errorf("phase = %q, want %q (a partial line is not a phase yet)", got, want)
	}
	p.Write([]byte(" findings\" step=match\n"))
	if got, want := p.phase(), "in the phase after: msg=\"reading every host's findings\" step=match"; got != want {
		t.Errorf("phase = %q, want %q", got, want)
	}
}
