// Package osrelease reads os-release(5) and maps a distro release to the OSV
// ecosystem its packages match in.
package osrelease

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Paths are where os-release lives, relative to a filesystem root, in the
// order os-release(5) says to look.
var Paths = []string{"etc/os-release", "usr/lib/os-release"}

// Parse reads KEY=value lines; values may be quoted with ' or " and use
// backslash escapes. Malformed lines are ignored, as systemd does.
func Parse(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = unquote(strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read os-release: %w", err)
	}
	return m, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		if v[0] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return v[1 : len(v)-1]
	}
	return v
}

// Ecosystem maps os-release fields to the OSV ecosystem with release:
// Debian:12, Ubuntu:22.04:LTS, Alpine:v3.18, Red Hat:enterprise_linux:9,
// AlmaLinux:9, Rocky Linux:9. It returns "" for a distro or release it
// cannot map (for example Debian testing, which has no VERSION_ID).
func Ecosystem(f map[string]string) string {
	id, ver := f["ID"], f["VERSION_ID"]
	major, _, _ := strings.Cut(ver, ".")
	if ver == "" {
		return ""
	}
	switch id {
	case "debian":
		return "Debian:" + major
	case "ubuntu":
		eco := "Ubuntu:" + ver
		if isUbuntuLTS(ver, f["VERSION"]) {
			eco += ":LTS"
		}
		return eco
	case "alpine":
		parts := strings.SplitN(ver, ".", 3)
		if len(parts) < 2 {
			return ""
		}
		return "Alpine:v" + parts[0] + "." + parts[1]
	case "rhel":
		return "Red Hat:enterprise_linux:" + major
	case "almalinux":
		return "AlmaLinux:" + major
	case "rocky":
		return "Rocky Linux:" + major
	}
	return ""
}

// isUbuntuLTS trusts VERSION's "LTS" when present; otherwise LTS releases are
// the April releases of even years.
func isUbuntuLTS(versionID, version string) bool {
	if strings.Contains(version, "LTS") {
		return true
	}
	y, m, ok := strings.Cut(versionID, ".")
	yy, err := strconv.Atoi(y)
	return ok && err == nil && m == "04" && yy%2 == 0
}
