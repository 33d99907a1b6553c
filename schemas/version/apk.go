package version

// apk key, after apk-tools' version.c. A version is
// number{.number}[letter]{_suffix[number]}[~hash][-rN]; apk-tools compares
// token by token, and where one version has a token of another kind (or
// ends) the kind decides: digit > letter > post-release suffix > suffix
// number > hash > revision > end > pre-release suffix (1.0.1 > 1.0a >
// 1.0_p1 > 1.0 > 1.0_rc1; 1.0-r1 > 1.0). Each token starts with a tag
// byte in that order, so keys compare the same way.
//
// Components after the first that start with '0' compare as strings
// (Gentoo rule, as apk-tools since 2.14: 1.05 < 1.5, 1.0 < 1.00), every
// other number numerically. A number right after the letter (openssh's
// 6.6.2p1) is refused by apk-tools 3 but ordered by the apk-tools 2 that
// Alpine 3.x ships, and real packages use it: we order it like apk-tools 2.
const (
	apkPreSuffix  = 0x10 // + index in apkPre
	apkEnd        = 0x20
	apkRevision   = 0x30
	apkHash       = 0x40
	apkSuffixNum  = 0x48
	apkPostSuffix = 0x50 // + index in apkPost
	apkLetter     = 0x60
	apkDigit      = 0x70

	apkZeroLead = 0x01 // component with a leading zero: digits as bytes 0x10+d, then apkStrEnd
	apkNumber   = 0x02 // component without one: appendNum
	apkStrEnd   = 0x01
)

var (
	apkPre  = [...]string{"alpha", "beta", "pre", "rc"}
	apkPost = [...]string{"cvs", "svn", "git", "hg", "p"}
)

// apk token kinds, in the order a version must follow (apk-tools rejects
// going back, except a digit after a letter and a suffix after a suffix
// number).
const (
	apkStDigit = iota
	apkStLetter
	apkStSuffix
	apkStHash
	apkStRevision
)

func apkKey(dst []byte, v string) ([]byte, string) {
	if v == "" {
		return dst, "empty version"
	}
	if !isDigit(v[0]) {
		return dst, "does not start with a digit"
	}
	var r string
	i := digitsEnd(v, 0)
	if dst, r = appendNum(dst, v[:i]); r != "" {
		return dst, r
	}
	st := apkStDigit
	for i < len(v) {
		switch c := v[i]; {
		case c == '.' && st == apkStDigit:
			j := digitsEnd(v, i+1)
			if j == i+1 {
				return dst, "'.' not followed by a number"
			}
			dst = append(dst, apkDigit)
			if v[i+1] == '0' {
				dst = append(dst, apkZeroLead)
				for k := i + 1; k < j; k++ {
					dst = append(dst, 0x10+v[k]-'0')
				}
				dst = append(dst, apkStrEnd)
			} else {
				dst = append(dst, apkNumber)
				if dst, r = appendNum(dst, v[i+1:j]); r != "" {
					return dst, r
				}
			}
			i = j
		case isLower(c) && st == apkStDigit:
			// A single letter; the number apk-tools allows after it
			// (openssh's 6.6.2p1) compares as a plain number.
			dst = append(dst, apkLetter, c)
			i++
			st = apkStLetter
			if j := digitsEnd(v, i); j > i {
				dst = append(dst, apkDigit, apkNumber)
				if dst, r = appendNum(dst, v[i:j]); r != "" {
					return dst, r
				}
				i = j
				st = apkStDigit
			}
		case c == '_' && st <= apkStSuffix:
			j := i + 1
			for j < len(v) && isLower(v[j]) {
				j++
			}
			name := v[i+1 : j]
			tag := byte(0)
			for k, s := range apkPre {
				if name == s {
					tag = apkPreSuffix + byte(k)
				}
			}
			for k, s := range apkPost {
				if name == s {
					tag = apkPostSuffix + byte(k)
				}
			}
			if tag == 0 {
				return dst, "unknown suffix"
			}
			dst = append(dst, tag)
			i = j
			if j = digitsEnd(v, i); j > i {
				dst = append(dst, apkSuffixNum)
				if dst, r = appendNum(dst, v[i:j]); r != "" {
					return dst, r
				}
				i = j
			}
			st = apkStSuffix
		case c == '~' && st < apkStHash:
			j := i + 1
			for j < len(v) && (isDigit(v[j]) || v[j] >= 'a' && v[j] <= 'f') {
				j++
			}
			if j == i+1 {
				return dst, "'~' not followed by a hexadecimal commit hash"
			}
			dst = append(dst, apkHash)
			dst = append(dst, v[i+1:j]...)
			dst = append(dst, apkStrEnd)
			i = j
			st = apkStHash
		case c == '-' && st < apkStRevision && i+1 < len(v) && v[i+1] == 'r':
			j := digitsEnd(v, i+2)
			if j == i+2 {
				return dst, "'-r' not followed by a number"
			}
			dst = append(dst, apkRevision)
			if dst, r = appendNum(dst, v[i+2:j]); r != "" {
				return dst, r
			}
			i = j
			st = apkStRevision
		default:
			return dst, "unexpected character"
		}
	}
	return append(dst, apkEnd), ""
}
