package match

import (
	"context"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Input is one package to match, as `patchgrid match` reads it. Name and
// Version are what advisories are compared with unless SourceName /
// SourceVersion are given (dpkg Source, apk origin, rpm source RPM).
type Input struct {
	Ecosystem     string `json:"ecosystem"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
}

func (in *Input) matchVersion() Version {
	v := Version{Ecosystem: in.Ecosystem, Name: in.Name, Version: in.Version}
	if in.SourceName != "" {
		v.Name = in.SourceName
	}
	if in.SourceVersion != "" {
		v.Version = in.SourceVersion
	}
	return v
}

// Match is one advisory matching one input, with its evidence.
type Match struct {
	Source       string    `json:"source"`
	AdvisoryID   string    `json:"advisory_id"`
	Aliases      []string  `json:"aliases"`
	Severity     string    `json:"severity"`
	Status       string    `json:"status"`
	File         string    `json:"file"`
	RecordHash   string    `json:"record_hash"`
	MatchedName  string    `json:"matched_name"`
	Installed    string    `json:"installed"`
	Comparator   string    `json:"comparator"`
	Range        int       `json:"range"`
	RangeType    string    `json:"range_type"`
	Introduced   string    `json:"introduced,omitempty"`
	Fixed        string    `json:"fixed,omitempty"`
	LastAffected string    `json:"last_affected,omitempty"`
	FixPublished time.Time `json:"fix_published,omitzero"`
	// SeveritySource says where Severity comes from, as the fleet's
	// exports do (kind:source/advisory_id[@release]); "" when nothing
	// rates the vulnerability or the store is too old for the analytics
	// migrations (Severity is then the record's own).
	SeveritySource string `json:"severity_source,omitempty"`
}

// MatchInputs matches packages against the store's current advisory
// records with the reference matcher: one query loads the ranges of all
// the inputs' (ecosystem, package) pairs. out[i] holds the matches of
// ins[i], one per advisory (its lowest matching range as evidence).
func MatchInputs(ctx context.Context, s store.Store, cmp CompareFunc, ins []Input) ([][]Match, error) {
	seen := map[Pair]bool{}
	var pairs []Pair
	for i := range ins {
		v := ins[i].matchVersion()
		p := Pair{v.Ecosystem, NormalizeName(v.Ecosystem, v.Name)}
		if !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	evs, err := RangesFor(ctx, s, pairs)
	if err != nil {
		return nil, err
	}
	byPair := map[Pair][]Range{}
	type rk struct {
		source, id, hash, eco, pkg string
		idx                        uint16
	}
	ev := map[rk]*Evidence{}
	for i := range evs {
		r := &evs[i].Range
		k := Pair{r.Ecosystem, NormalizeName(r.Ecosystem, r.Package)}
		byPair[k] = append(byPair[k], *r)
		ev[rk{r.Source, r.AdvisoryID, r.RecordHash, r.Ecosystem, r.Package, r.Idx}] = &evs[i]
	}
	out := make([][]Match, len(ins))
	for i := range ins {
		v := ins[i].matchVersion()
		var last string
		for _, f := range Reference(cmp, []Version{v}, byPair[Pair{v.Ecosystem, NormalizeName(v.Ecosystem, v.Name)}]) {
			r := f.Range
			if id := r.Source + "\x00" + r.AdvisoryID; id == last {
				continue // findings come sorted by advisory, then range: keep the lowest
			} else {
				last = id
			}
			e := ev[rk{r.Source, r.AdvisoryID, r.RecordHash, r.Ecosystem, r.Package, r.Idx}]
			m := Match{Source: r.Source, AdvisoryID: r.AdvisoryID, Status: r.Status, RecordHash: r.RecordHash,
				MatchedName: v.Name, Installed: v.Version, Comparator: r.Comparator, Range: int(r.Idx), RangeType: r.Type,
				Introduced: r.Introduced, Fixed: r.Fixed, LastAffected: r.LastAffected, Aliases: []string{}}
			if r.FixPublished.Unix() > 0 {
				m.FixPublished = r.FixPublished.UTC()
			}
			if e != nil {
				m.Severity, m.File = e.Severity, e.File
				if e.Aliases != nil {
					m.Aliases = e.Aliases
				}
			}
			out[i] = append(out[i], m)
		}
	}
	if err := resolveMatchRatings(ctx, s, ins, out); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveMatchRatings gives each match the severity its finding would
// carry in the fleet (Ratings.Of for the input's ecosystem), in place of
// the record's own.
func resolveMatchRatings(ctx context.Context, s store.Store, ins []Input, out [][]Match) error {
	seen := map[RecordKey]bool{}
	var keys []RecordKey
	for i := range out {
		for _, m := range out[i] {
			if k := (RecordKey{m.Source, m.AdvisoryID}); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	rt, ok, err := ResolveRatings(ctx, s, keys)
	if err != nil || !ok {
		return err
	}
	for i := range out {
		eco := ins[i].matchVersion().Ecosystem
		for j := range out[i] {
			m := &out[i][j]
			if r, ok := rt.Of(RecordKey{m.Source, m.AdvisoryID}, eco); ok {
				m.Severity, m.SeveritySource = r.Severity, r.Source
			}
		}
	}
	return nil
}
