package version

// NuGet key, after NuGet.Versioning's VersionComparer: up to four numbers
// (missing ones are 0, so 1.0 == 1.0.0.0), then the prerelease labels as in
// SemVer 2.0 (no leading zeros in numeric labels) but compared ignoring
// case (written lower-cased). Build
// metadata after '+' does not take part.
func nugetKey(dst []byte, v string) ([]byte, string) {
	s := v
	var nums [4]string
	i := 0
	n := 0
	for ; n < 4; n++ {
		if n > 0 {
			if i >= len(s) || s[i] != '.' {
				break
			}
			i++
		}
		j := digitsEnd(s, i)
		if j == i {
			return dst, "expected up to four dot-separated numbers"
		}
		nums[n] = s[i:j]
		i = j
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
			return dst, "unexpected character"
		}
		if r := checkIdents(s[i+1:], false); r != "" {
			return dst, r
		}
	}
	var r string
	for _, num := range nums {
		if dst, r = appendNum(dst, num); r != "" {
			return dst, r
		}
	}
	if pre == "" {
		return append(dst, semverRelease), ""
	}
	dst = append(dst, semverPre)
	start := 0
	for k := 0; k <= len(pre); k++ {
		if k < len(pre) && pre[k] != '.' {
			continue
		}
		id := pre[start:k]
		if allDigits(id) {
			dst = append(dst, semverIdentNum)
			if dst, r = appendNum(dst, id); r != "" {
				return dst, r
			}
		} else {
			dst = append(dst, semverIdentAlpha)
			for z := 0; z < len(id); z++ {
				dst = append(dst, lowerByte(id[z]))
			}
			dst = append(dst, semverIdentEnd)
		}
		start = k + 1
	}
	return append(dst, semverPreEnd), ""
}
