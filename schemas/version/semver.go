package version

// SemVer 2.0 key (npm, crates.io) and Go module versions: major, minor and
// patch numbers, then semverRelease for a release, or semverPre followed
// by the prerelease identifiers (numeric ones as numbers, which sort before
// alphanumeric ones; a shorter list sorts first) and semverPreEnd. Build
// metadata does not take part in ordering (SemVer 2.0 §10), so 1.0.0+a and
// 1.0.0+b get equal keys, as do Go's v2.0.0+incompatible and v2.0.0.
const (
	semverPreEnd  = 0x01
	semverPre     = 0x02
	semverRelease = 0x03

	semverIdentNum   = 0x02
	semverIdentAlpha = 0x03
	semverIdentEnd   = 0x01
)

// semverKey accepts what node-semver accepts in loose mode: leading 'v',
// '=' and spaces, leading zeros in numbers, and a prerelease without its
// '-' when it starts with a letter (1.2.3beta).
func semverKey(dst []byte, v string) ([]byte, string) {
	s := v
	for len(s) > 0 && (s[0] == 'v' || s[0] == '=' || s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	var nums [3]string
	i := 0
	for n := 0; n < 3; n++ {
		if n > 0 {
			if i >= len(s) || s[i] != '.' {
				return dst, "expected major.minor.patch"
			}
			i++
		}
		j := digitsEnd(s, i)
		if j == i {
			return dst, "expected major.minor.patch"
		}
		nums[n] = s[i:j]
		i = j
	}
	pre := ""
	if i < len(s) && s[i] != '+' {
		if s[i] == '-' {
			i++
		} else if !isAlpha(s[i]) {
			return dst, "unexpected character after patch number"
		}
		j := i
		for j < len(s) && s[j] != '+' {
			j++
		}
		pre = s[i:j]
		if r := checkIdents(pre, false); r != "" {
			return dst, r
		}
		i = j
	}
	if i < len(s) {
		if r := checkIdents(s[i+1:], false); r != "" {
			return dst, r
		}
	}
	return appendSemver(dst, nums, pre)
}

// goKey follows golang.org/x/mod/semver, with the leading 'v' optional
// because OSV's Go ranges have none: vMAJOR[.MINOR[.PATCH[-pre][+build]]],
// no leading zeros, and the shorthands v1 and v1.2 meaning v1.0.0 and
// v1.2.0.
func goKey(dst []byte, v string) ([]byte, string) {
	s := v
	if len(s) > 0 && s[0] == 'v' {
		s = s[1:]
	}
	var nums [3]string
	nums[1], nums[2] = "0", "0"
	i := 0
	for n := 0; n < 3; n++ {
		if n > 0 {
			if i == len(s) {
				// Shorthand: v1 and v1.2 only when nothing follows.
				break
			}
			if s[i] != '.' {
				return dst, "expected vMAJOR.MINOR.PATCH"
			}
			i++
		}
		j := digitsEnd(s, i)
		if j == i {
			return dst, "expected vMAJOR.MINOR.PATCH"
		}
		if s[i] == '0' && j-i > 1 {
			return dst, "number with a leading zero"
		}
		nums[n] = s[i:j]
		i = j
		if n < 2 && i < len(s) && s[i] != '.' {
			return dst, "prerelease or build needs vMAJOR.MINOR.PATCH"
		}
	}
	pre := ""
	if i < len(s) && s[i] == '-' {
		j := i + 1
		for j < len(s) && s[j] != '+' {
			j++
		}
		pre = s[i+1 : j]
		if r := checkIdents(pre, true); r != "" {
			return dst, r
		}
		i = j
	}
	if i < len(s) {
		if s[i] != '+' {
			return dst, "unexpected character after patch number"
		}
		if r := checkIdents(s[i+1:], false); r != "" {
			return dst, r
		}
	}
	return appendSemver(dst, nums, pre)
}

// checkIdents validates dot-separated identifiers of [0-9A-Za-z-].
// strictNum rejects numeric identifiers with leading zeros.
func checkIdents(s string, strictNum bool) string {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !isAlnum(c) && c != '-' {
				return "invalid character in prerelease or build"
			}
			continue
		}
		id := s[start:i]
		if id == "" {
			return "empty prerelease or build identifier"
		}
		if strictNum && len(id) > 1 && id[0] == '0' && allDigits(id) {
			return "numeric identifier with a leading zero"
		}
		start = i + 1
	}
	return ""
}

func appendSemver(dst []byte, nums [3]string, pre string) ([]byte, string) {
	var r string
	for _, n := range nums {
		if dst, r = appendNum(dst, n); r != "" {
			return dst, r
		}
	}
	if pre == "" {
		return append(dst, semverRelease), ""
	}
	dst = append(dst, semverPre)
	start := 0
	for i := 0; i <= len(pre); i++ {
		if i < len(pre) && pre[i] != '.' {
			continue
		}
		id := pre[start:i]
		if allDigits(id) {
			dst = append(dst, semverIdentNum)
			if dst, r = appendNum(dst, id); r != "" {
				return dst, r
			}
		} else {
			dst = append(dst, semverIdentAlpha)
			dst = append(dst, id...)
			dst = append(dst, semverIdentEnd)
		}
		start = i + 1
	}
	return append(dst, semverPreEnd), ""
}
