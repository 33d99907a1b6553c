package version

// RubyGems key, after Gem::Version#<=>: a '-' means ".pre.", segments are
// runs of digits (numbers) or letters (strings), trailing zeros are
// dropped from the leading numbers and from the rest, and segments compare
// pairwise with a missing one meaning 0 and any string below any number.
//
// A zero that is not trailing equals a missing segment, so it cannot get
// one fixed byte: it is written as gemZeroNeg or gemZeroPos by the kind of
// the next non-zero segment (a string sorts below a missing segment, a
// number above), which is what decides a comparison with a version that
// ends there.
const (
	gemString  = 0x10 // bytes, then gemStrEnd
	gemZeroNeg = 0x20
	gemEnd     = 0x30
	gemZeroPos = 0x40
	gemNumber  = 0x50
	gemStrEnd  = 0x01
)

// gemSegment returns the segment starting at or after i (skipping '.')
// and the position after it; a '-' yields the string "pre".
func gemSegment(s string, i int) (seg string, isNum bool, next int) {
	for i < len(s) && s[i] == '.' {
		i++
	}
	if i == len(s) {
		return "", false, i
	}
	if s[i] == '-' {
		return "pre", false, i + 1
	}
	j := i
	if isDigit(s[i]) {
		j = digitsEnd(s, i)
		return s[i:j], true, j
	}
	for j < len(s) && isAlpha(s[j]) {
		j++
	}
	return s[i:j], false, j
}

func isZero(seg string) bool {
	for i := 0; i < len(seg); i++ {
		if seg[i] != '0' {
			return false
		}
	}
	return true
}

func rubygemsKey(dst []byte, v string) ([]byte, string) {
	s := v
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	if r := checkGem(s); r != "" {
		return dst, r
	}
	// The numeric group ends at the first string segment. In each group,
	// find where trailing zeros start.
	firstStr, numEnd, restEnd := len(s), 0, len(s)
	for i := 0; i < len(s); {
		seg, isNum, next := gemSegment(s, i)
		if seg == "" {
			break
		}
		if !isNum {
			firstStr = i
			break
		}
		if !isZero(seg) {
			numEnd = next
		}
		i = next
	}
	restEnd = firstStr
	for i := firstStr; i < len(s); {
		seg, isNum, next := gemSegment(s, i)
		if seg == "" {
			break
		}
		if !isNum || !isZero(seg) {
			restEnd = next
		}
		i = next
	}
	var r string
	for _, g := range [2][2]int{{0, numEnd}, {firstStr, restEnd}} {
		for i := g[0]; i < g[1]; {
			seg, isNum, next := gemSegment(s, i)
			switch {
			case !isNum:
				dst = append(dst, gemString)
				dst = append(dst, seg...)
				dst = append(dst, gemStrEnd)
			case !isZero(seg):
				dst = append(dst, gemNumber)
				if dst, r = appendNum(dst, seg); r != "" {
					return dst, r
				}
			default:
				dst = append(dst, gemZeroTag(s, next, g[1]))
			}
			i = next
		}
	}
	return append(dst, gemEnd), ""
}

// gemZeroTag looks at the segments in s[from:end] for the first non-zero.
func gemZeroTag(s string, from, end int) byte {
	for i := from; i < end; {
		seg, isNum, next := gemSegment(s, i)
		if !isNum {
			return gemZeroNeg
		}
		if !isZero(seg) {
			return gemZeroPos
		}
		i = next
	}
	return gemZeroPos
}

// checkGem matches Gem::Version's pattern:
// [0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?
func checkGem(s string) string {
	const bad = "not a RubyGems version"
	if s == "" || !isDigit(s[0]) {
		return bad
	}
	i := digitsEnd(s, 0)
	for i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j == i+1 {
			return bad
		}
		i = j
	}
	if i == len(s) {
		return ""
	}
	if s[i] != '-' {
		return bad
	}
	for i < len(s) {
		if s[i] != '-' && s[i] != '.' {
			return bad
		}
		j := i + 1
		for j < len(s) && (isAlnum(s[j]) || s[j] == '-') {
			j++
		}
		if j == i+1 {
			return bad
		}
		i = j
	}
	return ""
}
