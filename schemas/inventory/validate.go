package inventory

import "fmt"

// MaxCriticality is the highest Meta.Criticality (4 = critical).
const MaxCriticality = 4

// Validate checks the rules every scan on the wire obeys; Encode refuses and
// Decode rejects (ReasonInvalid) a scan that breaks one. It does not check
// InventoryHash against the packages: Encode and Decode do that, since it
// costs a hash of the whole list.
func (s *Scan) Validate() error {
	switch {
	case s.HostID == "":
		return invalid("host_id", "empty host id")
	case s.ScanID == "":
		return invalid("scan_id", "empty scan id")
	case s.ScannedAt.IsZero():
		return invalid("scanned_at", "zero scan time")
	case s.Meta.Criticality > MaxCriticality:
		return invalid("meta.criticality", "criticality %d out of range 0..%d", s.Meta.Criticality, MaxCriticality)
	}
	if s.Heartbeat {
		if len(s.Packages) != 0 {
			return invalid("packages", "heartbeat carries %d packages", len(s.Packages))
		}
		if s.InventoryHash == "" {
			return invalid("inventory_hash", "heartbeat without the inventory hash it repeats")
		}
	}
	if s.InventoryHash != "" && !isHexSHA256(s.InventoryHash) {
		return invalid("inventory_hash", "%q is not a hex sha256", s.InventoryHash)
	}
	for i := range s.Packages {
		p := &s.Packages[i]
		switch {
		case p.Ecosystem == "":
			return invalid(fmt.Sprintf("packages[%d].ecosystem", i), "package %q has no ecosystem", p.Name)
		case p.Name == "":
			return invalid(fmt.Sprintf("packages[%d].name", i), "empty package name")
		case p.Version == "":
			return invalid(fmt.Sprintf("packages[%d].version", i), "package %q has no version", p.Name)
		}
	}
	return nil
}

func invalid(field, format string, args ...any) *DecodeError {
	return decodeErr(ReasonInvalid, field, -1, format, args...)
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
