package osrelease

import (
	"strings"
	"testing"
)

func TestEcosystem(t *testing.T) {
	for in, want := range map[string]string{
		"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"": "Debian:12",
		"ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"":                       "", // testing has no VERSION_ID
		"ID=ubuntu\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"":   "Ubuntu:22.04:LTS",
		"ID=ubuntu\nVERSION_ID=\"24.04\"":                                              "Ubuntu:24.04:LTS",
		"ID=ubuntu\nVERSION_ID=\"23.10\"\nVERSION=\"23.10 (Mantic Minotaur)\"":         "Ubuntu:23.10",
		"ID=alpine\nVERSION_ID=3.18.4":                                                 "Alpine:v3.18",
		"ID=alpine\nVERSION_ID=3":                                                      "",
		"ID=\"rhel\"\nVERSION_ID=\"9.5\"":                                              "Red Hat:enterprise_linux:9",
		"ID=\"almalinux\"\nVERSION_ID=\"9.4\"":                                         "AlmaLinux:9",
		"ID=\"rocky\"\nVERSION_ID=\"8.10\"":                                            "Rocky Linux:8",
		"ID=gentoo\nVERSION_ID=2.15":                                                   "",
		"# comment\n\nbroken line\nID='debian'\nVERSION_ID='11'":                       "Debian:11",
	} {
		f, err := Parse(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := Ecosystem(f); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestParseQuoting(t *testing.T) {
	f, err := Parse(strings.NewReader(`PRETTY_NAME="Debian \"GNU\"/Linux"` + "\nNAME='x y'\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f["PRETTY_NAME"] != `Debian "GNU"/Linux` || f["NAME"] != "x y" || f["EMPTY"] != "" {
		t.Errorf("%q", f)
	}
}

func TestFromFlag(t *testing.T) {
	for in, want := range map[string]string{
		"Debian:12":                  "Debian:12",
		"debian:12":                  "Debian:12",
		"DEBIAN:12.11":               "Debian:12",
		"Ubuntu:22.04":               "Ubuntu:22.04:LTS",
		"ubuntu:23.10":               "Ubuntu:23.10",
		"Ubuntu:22.04:LTS":           "Ubuntu:22.04:LTS",
		"Alpine:v3.18":               "Alpine:v3.18",
		"alpine:3.18.4":              "Alpine:v3.18",
		"Red Hat:enterprise_linux:9": "Red Hat:enterprise_linux:9",
		"rhel:9.5":                   "Red Hat:enterprise_linux:9",
		"rocky:9":                    "Rocky Linux:9",
		"AlmaLinux:8":                "AlmaLinux:8",
	} {
		_, got, err := FromFlag(in)
		if err != nil || got != want {
			t.Errorf("FromFlag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Debian", "Debian:", "Gentoo:2", "alpine:3", ":12"} {
		if _, eco, err := FromFlag(bad); err == nil {
			t.Errorf("FromFlag(%q) accepted: %q", bad, eco)
		}
	}
}

// FuzzFromFlag: --os is user input; whatever it is, FromFlag either
// rejects it or names a release whose ecosystem Ecosystem agrees with.
func FuzzFromFlag(f *testing.F) {
	for _, s := range []string{"Debian:12", "ubuntu:22.04:LTS", "alpine:v3.18", "Red Hat:enterprise_linux:9", ":", "rhel:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields, eco, err := FromFlag(s)
		if err != nil {
			return
		}
		if eco == "" || Ecosystem(fields) != eco {
			t.Fatalf("FromFlag(%q) = %v, %q", s, fields, eco)
		}
	})
}
