package nodewg

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A node-semver range ("<1.6.5 || >=1.7.0 <1.7.2", "^8.1.4", "2.0.x") is a
// union of comparator sets; each set is an intersection of bounds, i.e. one
// interval. interval is that interval in full versions: lo is inclusive
// ("" = unbounded), hi is exclusive unless hiIncl.
type interval struct {
	lo     string
	hi     string
	hiIncl bool
}

var (
	opSpaceRE = regexp.MustCompile(`(<=|>=|<|>|=|\^|~>?)\s+`)
	partialRE = regexp.MustCompile(`^[v=\s]*(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)
)

// parseRange translates a node-semver range into intervals, one per
// non-empty comparator set. Prerelease handling follows the key order
// (a prerelease sorts before its release) rather than node-semver's rule
// of excluding prereleases of other tuples: upper bounds like ^1.2.3 are
// written as < 2.0.0-0 so that 2.0.0's prereleases stay outside.
func parseRange(s string) ([]interval, error) {
	var out []interval
	for _, alt := range strings.Split(s, "||") {
		alt = strings.TrimSpace(opSpaceRE.ReplaceAllString(strings.TrimSpace(alt), "$1"))
		iv := interval{}
		set := func(lo string, hi string, hiIncl bool) {
			if lo != "" && (iv.lo == "" || cmp(lo, iv.lo) > 0) {
				iv.lo = lo
			}
			if hi != "" && (iv.hi == "" || cmp(hi, iv.hi) < 0 || (cmp(hi, iv.hi) == 0 && !hiIncl)) {
				iv.hi, iv.hiIncl = hi, hiIncl
			}
		}
		fields := strings.Fields(alt)
		if len(fields) == 3 && fields[1] == "-" {
			// Hyphen range: "1.2.3 - 2.3.4" = >=1.2.3 <=2.3.4 (partial upper
			// bounds round up).
			lo, _, err := bounds(fields[0])
			if err != nil {
				return nil, err
			}
			plo, phi, err := bounds(fields[2])
			if err != nil {
				return nil, err
			}
			if full(fields[2]) {
				set(lo, plo, true)
			} else {
				set(lo, phi, false)
			}
		} else {
			for _, f := range fields {
				if err := applyComparator(f, set); err != nil {
					return nil, fmt.Errorf("range %q: %w", s, err)
				}
			}
		}
		if iv.lo != "" && iv.hi != "" && (cmp(iv.lo, iv.hi) > 0 || (cmp(iv.lo, iv.hi) == 0 && !iv.hiIncl)) {
			continue // empty set
		}
		out = append(out, iv)
	}
	return out, nil
}

func applyComparator(f string, set func(lo, hi string, hiIncl bool)) error {
	op := ""
	for _, o := range []string{"<=", ">=", "~>", "<", ">", "=", "^", "~"} {
		if strings.HasPrefix(f, o) {
			op, f = o, f[len(o):]
			break
		}
	}
	lo, hi, err := bounds(f)
	if err != nil {
		return err
	}
	m := partialRE.FindStringSubmatch(f)
	if (op == "~" || op == "~>" || op == "^") && (m == nil || isX(m[1])) {
		op = "" // ~* and ^* (and a bare ~) mean any version
	}
	switch op {
	case "", "=":
		if full(f) {
			set(lo, lo, true)
		} else {
			set(lo, hi, false)
		}
	case ">=":
		set(lo, "", false)
	case ">":
		if full(f) {
			set(next(lo), "", false)
		} else if hi != "" {
			set(hi, "", false)
		} else {
			set("", "0.0.0-0", false) // >* matches nothing
		}
	case "<":
		if lo == "0.0.0" && !full(f) {
			set("", "0.0.0-0", false)
		} else {
			set("", lo, false)
		}
	case "<=":
		if full(f) {
			set("", lo, true)
		} else if hi != "" {
			set("", hi, false)
		}
	case "~", "~>":
		maj, _ := strconv.Atoi(m[1])
		if isX(m[2]) {
			set(lo, fmt.Sprintf("%d.0.0-0", maj+1), false)
		} else {
			mi, _ := strconv.Atoi(m[2])
			set(lo, fmt.Sprintf("%d.%d.0-0", maj, mi+1), false)
		}
	case "^":
		maj, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		pa, _ := strconv.Atoi(m[3])
		switch {
		case maj > 0 || isX(m[2]):
			set(lo, fmt.Sprintf("%d.0.0-0", maj+1), false)
		case mi > 0 || isX(m[3]):
			set(lo, fmt.Sprintf("0.%d.0-0", mi+1), false)
		default:
			set(lo, fmt.Sprintf("0.0.%d-0", pa+1), false)
		}
	}
	return nil
}

func isX(s string) bool { return s == "" || s == "x" || s == "X" || s == "*" }

// full reports whether v names a complete version (no x, no missing part).
func full(v string) bool {
	m := partialRE.FindStringSubmatch(v)
	return m != nil && !isX(m[1]) && !isX(m[2]) && !isX(m[3])
}

// bounds returns the versions a partial version spans: 1.2 → [1.2.0,
// 1.3.0-0); a full version v → [v, ""); * → [0.0.0, "").
func bounds(v string) (lo, hi string, err error) {
	if v == "" || v == "*" || v == "x" || v == "X" {
		return "0.0.0", "", nil
	}
	m := partialRE.FindStringSubmatch(v)
	if m == nil {
		return "", "", fmt.Errorf("bad version %q", v)
	}
	if isX(m[1]) {
		return "0.0.0", "", nil
	}
	maj, _ := strconv.Atoi(m[1])
	if isX(m[2]) {
		return fmt.Sprintf("%d.0.0", maj), fmt.Sprintf("%d.0.0-0", maj+1), nil
	}
	mi, _ := strconv.Atoi(m[2])
	if isX(m[3]) {
		return fmt.Sprintf("%d.%d.0", maj, mi), fmt.Sprintf("%d.%d.0-0", maj, mi+1), nil
	}
	pa, _ := strconv.Atoi(m[3])
	lo = fmt.Sprintf("%d.%d.%d", maj, mi, pa)
	if m[4] != "" {
		lo += "-" + m[4]
	}
	return lo, "", nil
}

// next is the smallest version greater than v: its patch successor's first
// prerelease, or v with a ".0" prerelease identifier appended.
func next(v string) string {
	base, pre, ok := strings.Cut(v, "-")
	if ok {
		return base + "-" + pre + ".0"
	}
	p := strings.Split(base, ".")
	pa, _ := strconv.Atoi(p[2])
	return fmt.Sprintf("%s.%s.%d-0", p[0], p[1], pa+1)
}

// cmp compares two full SemVer 2.0 versions (as produced by bounds).
func cmp(a, b string) int {
	ab, ap, _ := strings.Cut(a, "-")
	bb, bp, _ := strings.Cut(b, "-")
	as, bs := strings.Split(ab, "."), strings.Split(bb, ".")
	for i := 0; i < 3; i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case ap == bp:
		return 0
	case ap == "":
		return 1
	case bp == "":
		return -1
	}
	ai, bi := strings.Split(ap, "."), strings.Split(bp, ".")
	for i := 0; i < len(ai) && i < len(bi); i++ {
		x, ex := strconv.Atoi(ai[i])
		y, ey := strconv.Atoi(bi[i])
		switch {
		case ex == nil && ey == nil:
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case ex == nil:
			return -1
		case ey == nil:
			return 1
		default:
			if c := strings.Compare(ai[i], bi[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(ai) < len(bi):
		return -1
	case len(ai) > len(bi):
		return 1
	}
	return 0
}
