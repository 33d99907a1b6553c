package version

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// Comparator orders the versions of one versioning scheme.
type Comparator interface {
	// Name is the scheme: "dpkg", "rpm", "apk", "semver", "go", "pep440",
	// "maven", "rubygems", "nuget", "packagist".
	Name() string
	// AppendKey appends v's key to dst. It allocates only when dst must grow.
	AppendKey(dst []byte, v string) ([]byte, error)
	// Compare returns -1, 0 or +1 as a sorts before, equal to or after b.
	Compare(a, b string) (int, error)
}

// InvalidError is returned for a version its scheme cannot order.
type InvalidError struct {
	Ecosystem string // as given to Lookup, e.g. "Debian:12"
	Scheme    string
	Version   string
	Reason    string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("version: invalid %s version %q (%s scheme): %s", e.Ecosystem, e.Version, e.Scheme, e.Reason)
}

// encoder appends the key of v to dst, or returns a non-empty reason why v
// is not a valid version. Reasons are constant strings so that the hot path
// never formats anything.
type encoder func(dst []byte, v string) ([]byte, string)

type scheme struct {
	name string
	enc  encoder
}

var (
	dpkgScheme      = scheme{"dpkg", dpkgKey}
	rpmScheme       = scheme{"rpm", rpmKey}
	apkScheme       = scheme{"apk", apkKey}
	semverScheme    = scheme{"semver", semverKey}
	goScheme        = scheme{"go", goKey}
	pep440Scheme    = scheme{"pep440", pep440Key}
	mavenScheme     = scheme{"maven", mavenKey}
	rubygemsScheme  = scheme{"rubygems", rubygemsKey}
	nugetScheme     = scheme{"nuget", nugetKey}
	packagistScheme = scheme{"packagist", packagistKey}
)

// ecosystems maps OSV ecosystem names (without the ":release" suffix) to
// their scheme.
var ecosystems = map[string]scheme{
	"Debian":      dpkgScheme,
	"Ubuntu":      dpkgScheme,
	"Red Hat":     rpmScheme,
	"AlmaLinux":   rpmScheme,
	"Rocky Linux": rpmScheme,
	"openSUSE":    rpmScheme,
	"SUSE":        rpmScheme,
	"openEuler":   rpmScheme,
	"Mageia":      rpmScheme,
	"Alpine":      apkScheme,
	"Wolfi":       apkScheme,
	"Chainguard":  apkScheme,
	"npm":         semverScheme,
	"crates.io":   semverScheme,
	"Go":          goScheme,
	"PyPI":        pep440Scheme,
	"Maven":       mavenScheme,
	"RubyGems":    rubygemsScheme,
	"NuGet":       nugetScheme,
	"Packagist":   packagistScheme,
}

// comparator binds a scheme to the ecosystem name it was looked up with, so
// that errors name what the caller asked for.
type comparator struct {
	ecosystem string
	s         scheme
}

// Lookup returns the comparator of an OSV ecosystem. A release suffix
// ("Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.18") is accepted and ignored:
// ordering does not depend on the release.
func Lookup(ecosystem string) (Comparator, error) {
	c, err := lookup(ecosystem)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// lookup returns the concrete comparator: Key and Compare use it so that
// no interface value is allocated per call. Names match exactly: stored
// data and feeds carry OSV's spelling, and a "debian:12" that got this far
// would never join with advisories for "Debian:12", so it fails here,
// loudly, instead. Input typed by people goes through Canonical first.
func lookup(ecosystem string) (comparator, error) {
	base, _, _ := strings.Cut(ecosystem, ":")
	s, ok := ecosystems[base]
	if !ok {
		if canon, found := canonicalBase(base); found {
			return comparator{}, fmt.Errorf("version: unknown ecosystem %q (OSV spells it %q)", ecosystem, canon)
		}
		return comparator{}, fmt.Errorf("version: unknown ecosystem %q (known: %s)", ecosystem, strings.Join(Ecosystems(), ", "))
	}
	return comparator{ecosystem: ecosystem, s: s}, nil
}

// canonicalBase is OSV's spelling of an ecosystem name given in any case.
func canonicalBase(base string) (string, bool) {
	if _, ok := ecosystems[base]; ok {
		return base, true
	}
	for name := range ecosystems {
		if strings.EqualFold(name, base) {
			return name, true
		}
	}
	return "", false
}

// Canonical returns ecosystem with its name spelled as OSV spells it
// ("debian:12" → "Debian:12", "pypi" → "PyPI"); the release suffix is kept
// as given. Stored data and feeds use OSV's spelling, so every place that
// takes an ecosystem typed by a person should pass it through Canonical
// before it is compared with stored values.
func Canonical(ecosystem string) (string, error) {
	base, release, hasRelease := strings.Cut(ecosystem, ":")
	canon, ok := canonicalBase(strings.TrimSpace(base))
	if !ok {
		return "", fmt.Errorf("version: unknown ecosystem %q (known: %s)", ecosystem, strings.Join(Ecosystems(), ", "))
	}
	if hasRelease {
		return canon + ":" + release, nil
	}
	return canon, nil
}

// Ecosystems lists the ecosystem names Lookup knows (without releases),
// sorted.
func Ecosystems() []string {
	out := make([]string, 0, len(ecosystems))
	for name := range ecosystems {
		out = append(out, name)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}

// Scheme is the name of the versioning scheme of ecosystem ("dpkg", "rpm",
// ...), for listings.
func Scheme(ecosystem string) (string, error) {
	c, err := lookup(ecosystem)
	if err != nil {
		return "", err
	}
	return c.s.name, nil
}

// Key returns the byte-comparable key of v in ecosystem.
func Key(ecosystem, v string) (string, error) {
	c, err := lookup(ecosystem)
	if err != nil {
		return "", err
	}
	// Keys are rarely longer than the version plus a few bytes per part.
	k, err := c.AppendKey(make([]byte, 0, 2*len(v)+8), v)
	if err != nil || len(k) == 0 {
		return "", err
	}
	// k is never written again: share its bytes (one allocation per key).
	return unsafe.String(&k[0], len(k)), nil
}

// Compare compares a and b in ecosystem.
func Compare(ecosystem, a, b string) (int, error) {
	c, err := lookup(ecosystem)
	if err != nil {
		return 0, err
	}
	return c.Compare(a, b)
}

func (c comparator) Name() string { return c.s.name }

func (c comparator) AppendKey(dst []byte, v string) ([]byte, error) {
	n := len(dst)
	out, reason := c.s.enc(dst, v)
	if reason != "" {
		return dst[:n], &InvalidError{Ecosystem: c.ecosystem, Scheme: c.s.name, Version: v, Reason: reason}
	}
	return out, nil
}

func (c comparator) Compare(a, b string) (int, error) {
	var ba, bb [128]byte
	ka, err := c.AppendKey(ba[:0], a)
	if err != nil {
		return 0, err
	}
	kb, err := c.AppendKey(bb[:0], b)
	if err != nil {
		return 0, err
	}
	return bytes.Compare(ka, kb), nil
}

// maxDigits bounds a number's significant digits so that its length fits
// the one-byte length prefix of appendNum.
const maxDigits = 250

const reasonLongNumber = "number longer than 250 digits"

// appendNum appends the decimal digit string s (only '0'-'9', possibly
// empty, meaning 0) so that byte order is numeric order: a length byte
// (1 + significant digits, so longer numbers sort later) followed by the
// digits packed two per byte as nibbles 1..10. Leading zeros are dropped,
// so "007" and "7" get the same bytes. No byte is 0x00.
func appendNum(dst []byte, s string) ([]byte, string) {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	s = s[i:]
	if len(s) > maxDigits {
		return dst, reasonLongNumber
	}
	dst = append(dst, byte(1+len(s)))
	for i = 0; i+1 < len(s); i += 2 {
		dst = append(dst, (s[i]-'0'+1)<<4|(s[i+1]-'0'+1))
	}
	if len(s)%2 == 1 {
		dst = append(dst, (s[len(s)-1]-'0'+1)<<4)
	}
	return dst, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// digitsEnd returns the end of the run of digits starting at i.
func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
