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

// osNames maps the distro part of an --os value, lower-cased, to its
// os-release ID: both the OSV ecosystem name and the os-release ID work.
var osNames = map[string]string{
	"debian": "debian", "ubuntu": "ubuntu", "alpine": "alpine",
	"red hat": "rhel", "rhel": "rhel", "almalinux": "almalinux", "rocky linux": "rocky", "rocky": "rocky",
}

// FromFlag reads an OS release given by hand (`scan --os`), such as
// "Debian:12", "debian:12", "Ubuntu:22.04", "Alpine:v3.18", "alpine:3.18",
// "Red Hat:enterprise_linux:9" or "rhel:9", case-insensitively, and returns
// the os-release fields it stands for (ID, VERSION_ID) with its OSV
// ecosystem. An unknown distro or a missing release is an error.
func FromFlag(s string) (fields map[string]string, ecosystem string, err error) {
	name, rel, ok := strings.Cut(strings.TrimSpace(s), ":")
	id := osNames[strings.ToLower(strings.TrimSpace(name))]
	rel = strings.TrimSpace(rel)
	if id == "rhel" {
		if r, ok := cutPrefixFold(rel, "enterprise_linux:"); ok {
			rel = r
		}
	}
	if id == "ubuntu" {
		rel, _, _ = strings.Cut(rel, ":") // Ubuntu:22.04:LTS
	}
	if id == "alpine" {
		if r, ok := cutPrefixFold(rel, "v"); ok {
			rel = r
		}
	}
	if !ok || id == "" || rel == "" {
		return nil, "", fmt.Errorf("OS %q: want DISTRO:RELEASE with DISTRO one of Debian, Ubuntu, Alpine, Red Hat (rhel), AlmaLinux, Rocky Linux (e.g. Debian:12, Alpine:v3.18, rhel:9)", s)
	}
	fields = map[string]string{"ID": id, "VERSION_ID": rel}
	eco := Ecosystem(fields)
	if eco == "" {
		return nil, "", fmt.Errorf("OS %q: release %q of %s has no OSV ecosystem", s, rel, id)
	}
	return fields, eco, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
