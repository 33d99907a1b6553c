package version

// Packagist key, after PHP's version_compare (what OSV uses for
// Packagist), with a leading 'v' dropped as Composer does. The version is
// cut into numbers and strings at every non-alphanumeric character and at
// every digit/non-digit change. Strings rank by prefix: dev < alpha = a <
// beta = b < RC = rc < (number) < pl = p; any other string ranks below dev,
// and strings of one rank are equal. Where one version ends, the other is
// greater if its next part is a number or pl, smaller otherwise: so the
// end sits between RC and numbers.
const (
	phpOther  = 0x10
	phpDev    = 0x11
	phpAlpha  = 0x12
	phpBeta   = 0x13
	phpRC     = 0x14
	phpEnd    = 0x20
	phpNumber = 0x30
	phpPL     = 0x40
)

func phpSpecial(s string) byte {
	switch {
	case len(s) >= 3 && s[:3] == "dev":
		return phpDev
	case s[0] == 'a':
		return phpAlpha
	case s[0] == 'b':
		return phpBeta
	case len(s) >= 2 && (s[:2] == "RC" || s[:2] == "rc"):
		return phpRC
	case s[0] == 'p':
		return phpPL
	}
	return phpOther
}

func packagistKey(dst []byte, v string) ([]byte, string) {
	s := v
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	if s == "" {
		return dst, "empty version"
	}
	if !isAlnum(s[0]) {
		return dst, "does not start with a letter or digit"
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return dst, "space, control or non-ASCII character"
		}
		// PHP keeps empty parts around doubled or trailing separators
		// and compares them in ways that depend on its tokenizer; Composer
		// never produces them, so refuse rather than guess.
		if !isAlnum(s[i]) && (i+1 == len(s) || !isAlnum(s[i+1])) {
			return dst, "empty part between or after separators"
		}
	}
	var r string
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		j := i
		if isDigit(s[i]) {
			j = digitsEnd(s, i)
			dst = append(dst, phpNumber)
			if dst, r = appendNum(dst, s[i:j]); r != "" {
				return dst, r
			}
		} else {
			for j < len(s) && isAlpha(s[j]) {
				j++
			}
			dst = append(dst, phpSpecial(s[i:j]))
		}
		i = j
	}
	return append(dst, phpEnd), ""
}
