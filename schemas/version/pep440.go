package version

// PEP 440 key (PyPI), in the order of packaging's Version._key: epoch,
// release without trailing zeros, pre-release, post-release, dev release,
// local label. A dev release without pre or post release sorts before
// every pre-release of its release (1.0.dev1 < 1.0a1); no pre-release
// sorts after all of them; no post-release before any; no dev release
// after any; no local label before any. In a local label numeric parts
// sort after alphanumeric ones.
const (
	pepRelPart = 0x02
	pepRelEnd  = 0x01

	pepPreDevOnly = 0x01
	pepPreA       = 0x02
	pepPreB       = 0x03
	pepPreRC      = 0x04
	pepPreNone    = 0x05

	pepPostNone = 0x01
	pepPost     = 0x02

	pepDev     = 0x01
	pepDevNone = 0x02

	pepLocalNone   = 0x01
	pepLocal       = 0x02
	pepLocalEnd    = 0x01
	pepLocalAlpha  = 0x02
	pepLocalNum    = 0x03
	pepLocalStrEnd = 0x01
)

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasLabel reports whether s[i:] starts with label, ignoring case.
func hasLabel(s string, i int, label string) bool {
	if len(s)-i < len(label) {
		return false
	}
	for k := 0; k < len(label); k++ {
		if lowerByte(s[i+k]) != label[k] {
			return false
		}
	}
	return true
}

func isPepSep(c byte) bool { return c == '.' || c == '-' || c == '_' }

// pepLabel matches one of labels at s[i:] (after an optional separator),
// then an optional separator and number, as packaging's regex does. It
// returns the index of the label matched (-1 for none), the number
// (possibly empty) and the position after the match.
func pepLabel(s string, i int, labels []string) (int, string, int) {
	j := i
	if j < len(s) && isPepSep(s[j]) {
		j++
	}
	for k, l := range labels {
		if hasLabel(s, j, l) {
			j += len(l)
			n := j
			if n < len(s) && isPepSep(s[n]) {
				n++
			}
			// The separator after the label belongs to it even without a
			// number ("1.0a-" is 1.0a0), as in packaging's regex.
			e := digitsEnd(s, n)
			return k, s[n:e], e
		}
	}
	return -1, "", i
}

var (
	pepPreLabels  = []string{"alpha", "a", "beta", "b", "preview", "pre", "c", "rc"}
	pepPreTags    = []byte{pepPreA, pepPreA, pepPreB, pepPreB, pepPreRC, pepPreRC, pepPreRC, pepPreRC}
	pepPostLabels = []string{"post", "rev", "r"}
	pepDevLabels  = []string{"dev"}
)

func pep440Key(dst []byte, v string) ([]byte, string) {
	s := v
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	i := digitsEnd(s, 0)
	if i == 0 {
		return dst, "does not start with a number"
	}
	epoch := ""
	if i < len(s) && s[i] == '!' {
		epoch = s[:i]
		s = s[i+1:]
		if i = digitsEnd(s, 0); i == 0 {
			return dst, "no release number after epoch"
		}
	}
	// Release: find its end and the last non-zero component.
	relStart, relEnd, lastNonZero := 0, i, i
	for relEnd < len(s) && s[relEnd] == '.' {
		j := digitsEnd(s, relEnd+1)
		if j == relEnd+1 {
			break // '.' of a suffix like .post1
		}
		relEnd = j
	}
	// Trailing zero components do not count: 1.0 == 1.0.0 == 1.
	lastNonZero = relStart
	for k := relStart; k < relEnd; {
		e := digitsEnd(s, k)
		for z := k; z < e; z++ {
			if s[z] != '0' {
				lastNonZero = e
				break
			}
		}
		k = e + 1
	}
	preIdx, preN, i := pepLabel(s, relEnd, pepPreLabels)
	postN, hasPost := "", false
	if i+1 < len(s) && s[i] == '-' && isDigit(s[i+1]) {
		e := digitsEnd(s, i+1)
		postN, hasPost, i = s[i+1:e], true, e
	} else {
		var k int
		if k, postN, i = pepLabel(s, i, pepPostLabels); k >= 0 {
			hasPost = true
		}
	}
	devIdx, devN, i := pepLabel(s, i, pepDevLabels)
	local := ""
	if i < len(s) && s[i] == '+' {
		local = s[i+1:]
		if r := checkPepLocal(local); r != "" {
			return dst, r
		}
		i = len(s)
	}
	if i != len(s) {
		return dst, "not a PEP 440 version"
	}

	var r string
	if dst, r = appendNum(dst, epoch); r != "" {
		return dst, r
	}
	for k := relStart; k < lastNonZero; {
		e := digitsEnd(s, k)
		dst = append(dst, pepRelPart)
		if dst, r = appendNum(dst, s[k:e]); r != "" {
			return dst, r
		}
		k = e + 1
	}
	dst = append(dst, pepRelEnd)
	switch {
	case preIdx >= 0:
		dst = append(dst, pepPreTags[preIdx])
		if dst, r = appendNum(dst, preN); r != "" {
			return dst, r
		}
	case !hasPost && devIdx >= 0:
		dst = append(dst, pepPreDevOnly)
	default:
		dst = append(dst, pepPreNone)
	}
	if hasPost {
		dst = append(dst, pepPost)
		if dst, r = appendNum(dst, postN); r != "" {
			return dst, r
		}
	} else {
		dst = append(dst, pepPostNone)
	}
	if devIdx >= 0 {
		dst = append(dst, pepDev)
		if dst, r = appendNum(dst, devN); r != "" {
			return dst, r
		}
	} else {
		dst = append(dst, pepDevNone)
	}
	if local == "" {
		return append(dst, pepLocalNone), ""
	}
	dst = append(dst, pepLocal)
	start := 0
	for k := 0; k <= len(local); k++ {
		if k < len(local) && !isPepSep(local[k]) {
			continue
		}
		part := local[start:k]
		if allDigits(part) {
			dst = append(dst, pepLocalNum)
			if dst, r = appendNum(dst, part); r != "" {
				return dst, r
			}
		} else {
			dst = append(dst, pepLocalAlpha)
			for z := 0; z < len(part); z++ {
				dst = append(dst, lowerByte(part[z]))
			}
			dst = append(dst, pepLocalStrEnd)
		}
		start = k + 1
	}
	return append(dst, pepLocalEnd), ""
}

func checkPepLocal(s string) string {
	start := 0
	for k := 0; k <= len(s); k++ {
		if k < len(s) && !isPepSep(s[k]) {
			if !isAlnum(s[k]) {
				return "invalid character in local version label"
			}
			continue
		}
		if k == start {
			return "empty part in local version label"
		}
		start = k + 1
	}
	return ""
}
