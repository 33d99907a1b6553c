package cvss

import "testing"

// Published scores: NVD (3.x) and FIRST's CVSS 4.0 calculator / spec examples.
func TestScore(t *testing.T) {
	for _, tc := range []struct {
		vector  string
		version string
		score   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 10.0}, // CVE-2021-44228
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", 9.0},  // CVE-2021-45046
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", "3.1", 5.9},  // CVE-2021-45105
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:N/I:H/A:N", "3.1", 6.8},  // RHSA-2025:23414 CVE-2021-25220
		{"CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L", "3.0", 2.0},  // nodejs-wg 410
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N", "4.0", 5.3},
	} {
		v, s, err := Score(tc.vector)
		if err != nil || v != tc.version || s != tc.score {
			t.Errorf("Score(%q) = %q, %v, %v; want %q, %v", tc.vector, v, s, err, tc.version, tc.score)
		}
	}
	for _, bad := range []string{"", "AV:N/AC:L", "CVSS:3.1/AV:X", "CVSS:2.0/AV:N"} {
		if _, _, err := Score(bad); err == nil {
			t.Errorf("Score(%q): no error", bad)
		}
	}
}

func FuzzScore(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	f.Fuzz(func(t *testing.T, v string) {
		_, s, err := Score(v)
		if err == nil && (s < 0 || s > 10) {
			t.Fatalf("Score(%q) = %v out of range", v, s)
		}
	})
}
