// Package yamlsafe decodes YAML from outside the process (feed documents,
// policy files) with bounded cost.
//
// gopkg.in/yaml.v3 keeps aliases as pointers while it parses, so the parse
// itself is linear in the input; the cost appears when a value is
// materialised: decoding into Go values (or walking a yaml.Node through
// its aliases) copies the anchored value once per alias, and nested
// anchors multiply. A 467-byte "billion laughs" document expands to
// gigabytes. yaml.v3's only guard is a ratio heuristic (about 400,000
// alias decodes for a small document, none when decoding into yaml.Node),
// so this package measures the document first: it parses into a
// yaml.Node, computes the size the document would have with every alias
// expanded (memoised per anchor, so measuring is linear), checks nesting
// depth and mapping width, and only then decodes. yaml.v3 also compares
// every pair of keys of a mapping when decoding it (duplicate-key check),
// which is quadratic: MaxMappingKeys bounds that.
//
// Every limit error wraps ErrLimit, so callers can tell hostile or
// oversized input ("reject the input whole") from ordinary syntax errors.
package yamlsafe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// ErrLimit marks a document refused by a Limits check.
var ErrLimit = errors.New("yaml limit exceeded")

// Limits bounds one document. A zero field takes its default.
type Limits struct {
	// MaxBytes is the largest input accepted. Default 64 MiB (the largest
	// real YAML feed, an Alpine secdb main.yaml, is well under 1 MiB).
	MaxBytes int64
	// MaxNodes is the largest number of nodes the document may have with
	// every alias expanded. Default 2,000,000 (about 200 MB once decoded
	// into Go values in the worst case; real feed documents have < 100,000).
	MaxNodes int64
	// MaxAliasNodes is how many of those nodes may come from alias
	// expansion. Default 100,000: anchors are a convenience for humans
	// (shared settings in a policy file), never a bulk-data mechanism.
	MaxAliasNodes int64
	// MaxDepth is the deepest nesting of mappings and sequences. Default 256.
	MaxDepth int
	// MaxMappingKeys is the widest mapping. Default 10,000.
	MaxMappingKeys int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 20
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = 2_000_000
	}
	if l.MaxAliasNodes <= 0 {
		l.MaxAliasNodes = 100_000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 256
	}
	if l.MaxMappingKeys <= 0 {
		l.MaxMappingKeys = 10_000
	}
	return l
}

// Unmarshal decodes the first YAML document of data into v under the
// default Limits. It is the drop-in replacement for yaml.Unmarshal.
func Unmarshal(data []byte, v any) error { return Limits{}.Unmarshal(data, v) }

// UnmarshalStrict is Unmarshal with unknown mapping keys an error (for
// files people write by hand: a misspelt key must not be ignored).
func UnmarshalStrict(data []byte, v any) error { return Limits{}.UnmarshalStrict(data, v) }

// Parse returns the first YAML document of data as a node tree under the
// default Limits; node.Decode on it (or on any of its children) then has
// bounded cost.
func Parse(data []byte) (*yaml.Node, error) { return Limits{}.Parse(data) }

// UnmarshalFile reads the file at path (at most MaxBytes) and decodes it
// into v under the default Limits. Errors name the file.
func UnmarshalFile(path string, v any) error { return Limits{}.UnmarshalFile(path, v) }

// Unmarshal decodes the first YAML document of data into v under l.
// An empty document leaves v unchanged, as yaml.Unmarshal does.
func (l Limits) Unmarshal(data []byte, v any) error {
	n, err := l.Parse(data)
	if err != nil {
		return err
	}
	if n.Kind == 0 {
		return nil
	}
	return n.Decode(v)
}

// UnmarshalStrict decodes like Unmarshal; a mapping key that matches no
// field of the target struct is an error.
func (l Limits) UnmarshalStrict(data []byte, v any) error {
	n, err := l.Parse(data)
	if err != nil || n.Kind == 0 {
		return err
	}
	// yaml.Node.Decode has no KnownFields: decode the (now measured) input
	// again with a strict decoder.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// UnmarshalFile reads path (at most MaxBytes) and decodes it into v.
func (l Limits) UnmarshalFile(path string, v any) error {
	l = l.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return err // *fs.PathError names the file
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, l.MaxBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := l.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Parse parses the first document of data into a node tree and checks it
// against l. The returned node's Kind is 0 for empty input.
func (l Limits) Parse(data []byte) (*yaml.Node, error) {
	l = l.withDefaults()
	if int64(len(data)) > l.MaxBytes {
		return nil, fmt.Errorf("%w: document of more than %d bytes", ErrLimit, l.MaxBytes)
	}
	var n yaml.Node
	// yaml.NewDecoder rather than yaml.Unmarshal: the decoder reads one
	// document and its errors are the same; io.EOF means an empty input.
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{}, nil
		}
		return nil, err
	}
	m := measure{lim: l, sizes: map[*yaml.Node]int64{}}
	total, err := m.size(&n, 0)
	if err != nil {
		return nil, err
	}
	if total > l.MaxNodes {
		// total saturates at MaxNodes+1: the real size is not known.
		return nil, fmt.Errorf("%w: more than %d nodes with aliases expanded", ErrLimit, l.MaxNodes)
	}
	if aliased := total - m.literal; aliased > l.MaxAliasNodes {
		return nil, fmt.Errorf("%w: aliases expand to %d nodes (limit %d)", ErrLimit, aliased, l.MaxAliasNodes)
	}
	return &n, nil
}

type measure struct {
	lim     Limits
	sizes   map[*yaml.Node]int64 // expanded size of each node met (memo for anchors)
	literal int64                // nodes written out in the document (not via an alias)
}

// size returns the node count of n with aliases expanded. Each node is
// walked once (anchors are defined before their aliases, so an alias always
// finds its target's size memoised): measuring is linear in the input.
// Sums saturate just above MaxNodes so a deep alias chain cannot overflow.
func (m *measure) size(n *yaml.Node, depth int) (int64, error) {
	if n == nil {
		return 0, nil
	}
	if depth > m.lim.MaxDepth {
		return 0, fmt.Errorf("%w: nesting deeper than %d (line %d)", ErrLimit, m.lim.MaxDepth, n.Line)
	}
	if s, ok := m.sizes[n]; ok {
		if s < 0 {
			// yaml.v3 refuses this too, but only when decoding.
			return 0, fmt.Errorf("yaml: anchor %q value contains itself (line %d)", n.Anchor, n.Line)
		}
		return s, nil
	}
	if n.Kind == yaml.AliasNode {
		return m.size(n.Alias, depth+1)
	}
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > m.lim.MaxMappingKeys {
		return 0, fmt.Errorf("%w: mapping with %d keys (limit %d, line %d)", ErrLimit, len(n.Content)/2, m.lim.MaxMappingKeys, n.Line)
	}
	m.literal++
	m.sizes[n] = -1 // in progress: an alias back to n is a cycle
	total := int64(1)
	for _, c := range n.Content {
		s, err := m.size(c, depth+1)
		if err != nil {
			return 0, err
		}
		total = min(total+s, m.lim.MaxNodes+1)
	}
	m.sizes[n] = total
	return total, nil
}
