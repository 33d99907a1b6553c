package version

import "strings"

// Maven key, after maven-artifact's ComparableVersion: the version is
// parsed into a tree of items (numbers, qualifiers, and a sub-list for
// each '-' and each digit/letter transition), trailing "null" items are
// removed, and lists compare item by item with a missing item meaning
// null (0, "", "ga", "final", "release").
//
// ComparableVersion is not transitive when '.' and '-' mix: it orders any
// number above any sub-list and any sub-list above any qualifier, yet
// compares each against a missing item by sign. 1-1 < 1.0.RC1 < 1 < 1-1 is
// a cycle it really produces. Our total order keeps every comparison with
// a missing item exact (what ranges like "fixed 1.0" need), and follows
// the kind rule (qualifier < list < number) except where that would break
// it. Items equal to null that are not trailing (the 0 of 1.0.1) carry the
// sign of the first non-null item after them, which decides any comparison
// with a shorter version. One more deliberate difference: a list whose
// first item is null (1-0.1) compares to null by its first non-null item,
// where ComparableVersion would call it equal to null.
const (
	mvnQualLow   = 0x10 // + qualifier index 0..4: alpha, beta, milestone, rc, snapshot
	mvnNullNeg   = 0x18 // "", ga, final, release, followed by a negative item
	mvnListNeg   = 0x1c
	mvnZeroNeg   = 0x1e
	mvnEnd       = 0x20
	mvnNullPos   = 0x22
	mvnSP        = 0x24
	mvnOther     = 0x26 // unknown qualifier: its bytes, then mvnStrEnd
	mvnListPos   = 0x28
	mvnZeroPos   = 0x2a
	mvnNumber    = 0x2c
	mvnStrEnd    = 0x01
	mvnMaxNodes  = 128
	mvnRelease   = 5
	mvnUnknown   = 7
	mvnKindInt   = 0
	mvnKindStr   = 1
	mvnKindList  = 2
	reasonTooBig = "too many components"
)

type mvnNode struct {
	kind    uint8
	qual    uint8 // qualifier index for strings
	removed bool
	parent  int16
	val     string // digits without leading zeros, or the qualifier as written
}

type mvnTree struct {
	n     int
	nodes [mvnMaxNodes]mvnNode
}

func (t *mvnTree) add(parent int, kind uint8, val string, qual uint8) int {
	if t.n == mvnMaxNodes {
		return -1
	}
	t.nodes[t.n] = mvnNode{kind: kind, parent: int16(parent), val: val, qual: qual}
	t.n++
	return t.n - 1
}

func mvnQualifier(s string, followedByDigit bool) uint8 {
	if followedByDigit && len(s) == 1 {
		switch s[0] | 0x20 {
		case 'a':
			return 0
		case 'b':
			return 1
		case 'm':
			return 2
		}
	}
	for i, q := range [...]string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"} {
		if strings.EqualFold(s, q) {
			return uint8(i)
		}
	}
	switch {
	case strings.EqualFold(s, "ga"), strings.EqualFold(s, "final"), strings.EqualFold(s, "release"):
		return mvnRelease
	case strings.EqualFold(s, "cr"):
		return 3
	}
	return mvnUnknown
}

func (t *mvnTree) addItem(list int, isDigit, followedByDigit bool, s string) bool {
	if isDigit {
		i := 0
		for i < len(s) && s[i] == '0' {
			i++
		}
		return t.add(list, mvnKindInt, s[i:], 0) >= 0
	}
	return t.add(list, mvnKindStr, s, mvnQualifier(s, followedByDigit)) >= 0
}

func mavenKey(dst []byte, v string) ([]byte, string) {
	if v == "" {
		return dst, "empty version"
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return dst, "space or control character"
		}
	}
	var t mvnTree
	root := t.add(-1, mvnKindList, "", 0)
	list := root
	isDigit := false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := true
		switch {
		case c == '.' || c == '-':
			if i == start {
				ok = t.add(list, mvnKindInt, "", 0) >= 0
			} else {
				ok = t.addItem(list, isDigit, false, v[start:i])
			}
			start = i + 1
			if c == '-' {
				list = t.add(list, mvnKindList, "", 0)
				ok = ok && list >= 0
			}
		case isDigit != (c >= '0' && c <= '9') && i > start:
			// A digit/letter transition starts a sub-list, like '-'.
			ok = t.addItem(list, isDigit, !isDigit, v[start:i])
			start = i
			list = t.add(list, mvnKindList, "", 0)
			ok = ok && list >= 0
			isDigit = !isDigit
		default:
			isDigit = c >= '0' && c <= '9'
		}
		if !ok {
			return dst, reasonTooBig
		}
	}
	if len(v) > start && !t.addItem(list, isDigit, false, v[start:]) {
		return dst, reasonTooBig
	}
	// Normalize innermost lists first: lists are created after their parents.
	for l := t.n - 1; l >= 0; l-- {
		if t.nodes[l].kind != mvnKindList {
			continue
		}
		for i := t.n - 1; i > l; i-- {
			nd := &t.nodes[i]
			if int(nd.parent) != l || nd.removed {
				continue
			}
			if t.isNull(i) {
				nd.removed = true
			} else if nd.kind != mvnKindList {
				break
			}
		}
	}
	return t.appendList(dst, root)
}

func (t *mvnTree) isNull(i int) bool {
	nd := &t.nodes[i]
	switch nd.kind {
	case mvnKindInt:
		return nd.val == ""
	case mvnKindStr:
		return nd.qual == mvnRelease
	}
	for j := i + 1; j < t.n; j++ {
		if int(t.nodes[j].parent) == i && !t.nodes[j].removed {
			return false
		}
	}
	return true
}

// sign compares item i with a missing item.
func (t *mvnTree) sign(i int) int {
	nd := &t.nodes[i]
	switch nd.kind {
	case mvnKindInt:
		if nd.val == "" {
			return 0
		}
		return 1
	case mvnKindStr:
		switch {
		case nd.qual < mvnRelease:
			return -1
		case nd.qual == mvnRelease:
			return 0
		}
		return 1
	}
	return t.restSign(i, i)
}

// restSign is the sign of the first non-null child of list after index from.
func (t *mvnTree) restSign(list, from int) int {
	for j := from + 1; j < t.n; j++ {
		if int(t.nodes[j].parent) != list || t.nodes[j].removed {
			continue
		}
		if s := t.sign(j); s != 0 {
			return s
		}
	}
	return 0
}

func (t *mvnTree) appendList(dst []byte, list int) ([]byte, string) {
	for i := list + 1; i < t.n; i++ {
		nd := &t.nodes[i]
		if int(nd.parent) != list || nd.removed {
			continue
		}
		s := t.sign(i)
		neg := s < 0 || s == 0 && t.restSign(list, i) < 0
		switch nd.kind {
		case mvnKindInt:
			switch {
			case nd.val != "":
				dst = append(dst, mvnNumber)
				var r string
				if dst, r = appendNum(dst, nd.val); r != "" {
					return dst, r
				}
			case neg:
				dst = append(dst, mvnZeroNeg)
			default:
				dst = append(dst, mvnZeroPos)
			}
		case mvnKindStr:
			switch {
			case nd.qual < mvnRelease:
				dst = append(dst, mvnQualLow+nd.qual)
			case nd.qual == mvnRelease && neg:
				dst = append(dst, mvnNullNeg)
			case nd.qual == mvnRelease:
				dst = append(dst, mvnNullPos)
			case nd.qual == 6:
				dst = append(dst, mvnSP)
			default:
				dst = append(dst, mvnOther)
				for k := 0; k < len(nd.val); k++ {
					c := nd.val[k]
					if c >= 'A' && c <= 'Z' {
						c += 'a' - 'A'
					}
					dst = append(dst, c)
				}
				dst = append(dst, mvnStrEnd)
			}
		default:
			if neg {
				dst = append(dst, mvnListNeg)
			} else {
				dst = append(dst, mvnListPos)
			}
			var r string
			if dst, r = t.appendList(dst, i); r != "" {
				return dst, r
			}
		}
	}
	return append(dst, mvnEnd), ""
}
