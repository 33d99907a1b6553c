package outcome

import "testing"

// special8 must agree with strSpecial on every byte value at every
// position of a word, among plain bytes and among bytes it must not
// mistake for special ones (0x20, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff: the
// neighbours of the special values, and high bytes whose borrows could
// fake a match).
func TestSpecial8(t *testing.T) {
	for _, filler := range []byte{'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[pos] = byte(c)
				if got, want := special8(word(w)), strSpecial[c] || strSpecial[filler]; got != want {
					t.Fatalf("special8(% x) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

func FuzzSpecial8(f *testing.F) {
	f.Add(uint64(0x6162636465666768))
	f.Add(uint64(0x2061626364656667))
	f.Fuzz(func(t *testing.T, x uint64) {
		want := false
		for i := range 8 {
			want = want || strSpecial[byte(x>>(8*i))]
		}
		if got := special8(x); got != want {
			t.Fatalf("special8(%#016x) = %v, want %v", x, got, want)
		}
	})
}

func word(w [8]byte) uint64 {
	var x uint64
	for i := range w {
		x |= uint64(w[i]) << (8 * i)
	}
	return x
}
