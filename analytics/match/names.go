package match

import (
	"fmt"
	"strings"
)

// Package names are compared the way each ecosystem's own tools compare
// them, at match time, on both sides (the installed package's match_name
// and the advisory's package). Nothing stored is rewritten: inventories and
// advisory ranges loaded before this rule existed match under it too.
//
//	ecosystem  rule                                      why
//	PyPI       PEP 503: lower case, runs of -_. -> "-"   pip and PyPI resolve Flask, flask and FLASK to one project
//	NuGet      ASCII lower case                          NuGet package ids are case-insensitive
//	Packagist  ASCII lower case                          Composer lower-cases vendor/package names
//	others     unchanged                                 npm, Go, Maven, RubyGems, crates.io, dpkg, rpm and apk
//	                                                     names are case-sensitive in their own tools
//
// NormalizeName and nameKeySQL are the Go and ClickHouse forms of this one
// table; TestNameKeySQLEqualsGo holds them together.

// NormalizeName returns the name under which ecosystem's tools identify a
// package. Ecosystems are OSV names ("PyPI", "NuGet", "Packagist"); a
// release suffix is not expected on these (they have none).
func NormalizeName(ecosystem, name string) string {
	switch ecosystem {
	case "PyPI":
		return pep503(name)
	case "NuGet", "Packagist":
		return asciiLower(name)
	}
	return name
}

// normalizingEcosystems are the ecosystems whose names NormalizeName changes.
var normalizingEcosystems = []string{"PyPI", "NuGet", "Packagist"}

// nameKeySQL is NormalizeName in ClickHouse SQL over the columns eco and
// name (valid on 18.16 and 26.x: multiIf, lower and replaceRegexpAll are
// ASCII/RE2 on both, as NormalizeName is ASCII).
func nameKeySQL(eco, name string) string {
	return fmt.Sprintf(`multiIf(%[1]s = 'PyPI', lower(replaceRegexpAll(%[2]s, '[-_.]+', '-')), %[1]s IN ('NuGet', 'Packagist'), lower(%[2]s), %[2]s)`, eco, name)
}

// pep503 is PEP 503's normalize: re.sub(r"[-_.]+", "-", name).lower().
func pep503(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
