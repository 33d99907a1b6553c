// Package version turns package versions into byte-comparable keys: for two
// versions a and b of one ecosystem, bytes.Compare(Key(a), Key(b)) has the
// sign of the ecosystem's own comparison (dpkg, rpmvercmp, apk-tools, SemVer,
// PEP 440, Maven ComparableVersion, ...). ClickHouse then orders and matches
// versions with plain string comparisons, vectorized, with no per-ecosystem
// code in SQL. The key format is part of the stored schema: changing it needs
// a migration that re-keys inventory_packages and affected_ranges.
//
// API (the contract other packages code against):
//
//	func Lookup(ecosystem string) (Comparator, error)            // "Debian:12", "Alpine:v3.18", "PyPI", ...
//	func Key(ecosystem, v string) (string, error)
//	func Compare(ecosystem, a, b string) (int, error)
//	type Comparator interface {
//	    Name() string                                    // "dpkg", "rpm", "apk", "semver", "go", "pep440", "maven", "rubygems", "nuget", "packagist"
//	    AppendKey(dst []byte, v string) ([]byte, error)  // hot path: no allocation beyond dst growth
//	    Compare(a, b string) (int, error)
//	}
//
// Errors name the ecosystem and the input (*InvalidError). A version the
// ecosystem's own tool would refuse gets an error, never a key that might
// sort wrongly. Each scheme's file (dpkg.go, rpm.go, apk.go, semver.go,
// pep440.go, maven.go, rubygems.go, nuget.go, packagist.go) documents its
// key layout and, where the tool's own comparison is not a total order
// (rpm, Maven), the total order chosen.
package version
