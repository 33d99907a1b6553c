package version

import "strings"

// dpkg key: epoch number, then upstream and revision each as a dpkgPart.
//
// dpkg's verrevcmp alternates a non-digit run, compared character by
// character with the weights '~' < end-of-run < letters < other characters,
// and a digit run compared numerically (absent = 0). A dpkgPart writes each
// non-digit run as weight bytes followed by dpkgRunEnd, then the number.
// Past its end a string behaves as endless ("", 0) pairs; dpkgEnd encodes
// one such pair plus a sentinel that sorts above '~' and below every other
// run start, so a longer string wins or loses exactly as its next run does.
const (
	dpkgTilde    = 0x01
	dpkgSentinel = 0x02
	dpkgRunEnd   = 0x03
	dpkgOther    = 0x80 // added to '+', '-', '.', ':' so they sort after letters
)

var dpkgEnd = []byte{dpkgRunEnd, 0x01, dpkgSentinel}

func dpkgKey(dst []byte, v string) ([]byte, string) {
	if v == "" {
		return dst, "empty version"
	}
	epoch, rest := "", v
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, rest = v[:i], v[i+1:]
		if epoch == "" {
			return dst, "empty epoch"
		}
		if !allDigits(epoch) {
			return dst, "epoch is not a number"
		}
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return dst, "empty revision"
		}
	}
	if upstream == "" {
		return dst, "empty upstream version"
	}
	for i := 0; i < len(upstream); i++ {
		c := upstream[i]
		if !isAlnum(c) && c != '.' && c != '+' && c != '~' && c != '-' && c != ':' {
			return dst, "invalid character in upstream version"
		}
	}
	for i := 0; i < len(revision); i++ {
		c := revision[i]
		if !isAlnum(c) && c != '.' && c != '+' && c != '~' {
			return dst, "invalid character in revision"
		}
	}
	var r string
	if dst, r = appendNum(dst, epoch); r != "" {
		return dst, r
	}
	if dst, r = dpkgPart(dst, upstream); r != "" {
		return dst, r
	}
	return dpkgPart(dst, revision)
}

func dpkgPart(dst []byte, s string) ([]byte, string) {
	// A part made only of zeros (or empty) is a single ("", 0) pair, which
	// is what the end of a part means: write the end alone so that "1.0",
	// "1.0-0" and "1.0-00" get equal keys.
	zeros := true
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			zeros = false
			break
		}
	}
	if zeros {
		return append(dst, dpkgEnd...), ""
	}
	i := 0
	for i < len(s) {
		for ; i < len(s) && !isDigit(s[i]); i++ {
			switch c := s[i]; {
			case c == '~':
				dst = append(dst, dpkgTilde)
			case isAlpha(c):
				dst = append(dst, c)
			default:
				dst = append(dst, c+dpkgOther)
			}
		}
		dst = append(dst, dpkgRunEnd)
		j := digitsEnd(s, i)
		var r string
		if dst, r = appendNum(dst, s[i:j]); r != "" {
			return dst, r
		}
		i = j
	}
	return append(dst, dpkgEnd...), ""
}
