package feeds

import (
	"context"
	"errors"

	"github.com/patchgrid/patchgrid/ingest/feeds/epss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// DocumentResult is what one document of a location yields, without a
// store: what `feeds load` would read from it.
type DocumentResult struct {
	Name       string
	Format     Format // "" when not recognised
	Advisories []feed.Advisory
	KEV        int
	EPSS       int
	Problems   []feed.Problem // skipped records and ranges
	Err        error          // the document was rejected, with the reason
	NotFeed    bool           // rejected as no feed data (licence, README, schema)
}

// Inspect parses and keys every document under location, under the
// default Limits, and reports each to fn. Only cancellation stops it.
func Inspect(ctx context.Context, location string, lookup feed.LookupFunc, fn func(DocumentResult)) error {
	return walkLocation(ctx, location, Limits{}, func(d document) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := 0
		p, err := parseDocument(d, func(epss.Score) error { n++; return nil })
		res := DocumentResult{Name: d.name, Format: p.format, Advisories: p.advisories, KEV: len(p.kev), EPSS: n, Problems: p.problems, Err: err}
		if err != nil {
			res.NotFeed = errors.Is(err, errNotFeed)
			res.Format, _ = detect(d)
		}
		for i := range res.Advisories {
			res.Problems = append(res.Problems, feed.Key(&res.Advisories[i], lookup)...)
		}
		fn(res)
		return nil
	}, func(name string, err error) {
		fn(DocumentResult{Name: name, Err: err})
	})
}
