package osrelease

import (
	"bytes"
	"testing"
)

// FuzzParse: os-release comes from the scanned machine (or an --os flag):
// any content parses to fields or an error, and mapping the fields to an
// ecosystem never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte("ID=debian\nVERSION_ID=\"12\"\n"))
	f.Add([]byte("ID='ubuntu'\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\n"))
	f.Add([]byte("ID=\"rhel\"\nVERSION_ID=\"9.2\"\nID_LIKE=\"fedora\"\n# comment\nBAD LINE\n"))
	f.Add([]byte("ID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"a \\\"q\\\" b\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = Ecosystem(m)
		_, _, _ = FromFlag(string(data))
	})
}
