package version

import "strings"

// rpm key: epoch number, then version and release as rpmvercmp token
// streams, each closed by rpmEnd.
//
// rpmvercmp skips separators (anything but ASCII letters, digits, '~' and
// '^'), then compares token by token with '~' < end < '^' < letter run <
// digit run; letter runs compare like strcmp, digit runs numerically. The
// tag bytes below reproduce that order.
//
// Total order (rpm's own is not one): rpm's rpmverCmp skips the release
// when either side has none, so 1.0 == 1.0-1 and 1.0 == 1.0-2 while
// 1.0-1 < 1.0-2, which is not transitive. We order a missing release as
// the empty release, before every release (rpmvercmp("", "1") < 0, and what
// osv-scalibr does): 1.0 == 1.0- < 1.0-1 < 1.0-2. TestRPMMissingReleaseOrder
// pins it.
const (
	rpmTilde    = 0x01
	rpmEnd      = 0x02
	rpmCaret    = 0x03
	rpmAlpha    = 0x04
	rpmNum      = 0x05
	rpmAlphaEnd = 0x01 // below every letter: a shorter letter run sorts first
)

func rpmKey(dst []byte, v string) ([]byte, string) {
	if v == "" {
		return dst, "empty version"
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return dst, "space or control character"
		}
	}
	// Split as rpm's parseEVR does: an epoch only when the version starts
	// with digits followed by ':', the release after the last '-'. Any
	// other ':' or '-' is a separator inside the version.
	epoch, vr := "", v
	if i := digitsEnd(v, 0); i < len(v) && v[i] == ':' {
		epoch, vr = v[:i], v[i+1:]
	}
	ver, rel := vr, ""
	if i := strings.LastIndexByte(vr, '-'); i >= 0 {
		ver, rel = vr[:i], vr[i+1:]
	}
	if ver == "" {
		return dst, "empty version"
	}
	var r string
	if dst, r = appendNum(dst, epoch); r != "" {
		return dst, r
	}
	if dst, r = rpmTokens(dst, ver); r != "" {
		return dst, r
	}
	return rpmTokens(dst, rel)
}

func rpmTokens(dst []byte, s string) ([]byte, string) {
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '~':
			dst = append(dst, rpmTilde)
			i++
		case c == '^':
			dst = append(dst, rpmCaret)
			i++
		case isDigit(c):
			j := digitsEnd(s, i)
			dst = append(dst, rpmNum)
			var r string
			if dst, r = appendNum(dst, s[i:j]); r != "" {
				return dst, r
			}
			i = j
		case isAlpha(c):
			dst = append(dst, rpmAlpha)
			for ; i < len(s) && isAlpha(s[i]); i++ {
				dst = append(dst, s[i])
			}
			dst = append(dst, rpmAlphaEnd)
		default:
			i++ // separator
		}
	}
	return append(dst, rpmEnd), ""
}
