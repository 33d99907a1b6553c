package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// TypeVerdicts reads what package findings cannot show, from the same
// functions as the API's /api/v1/verdicts and the run summary
// (analytics/match verdicts.go). Its own fields:
//
//	verdict     "stale" (default): hosts whose last scan is older than
//	            staleAfter, with the age of that scan (a stale host is never
//	            patched or compliant: its last state is not its current one);
//	            "eol": hosts on a release past its end of life;
//	            "unmatched": packages matching could not judge, by reason
//	            and ecosystem
//	staleAfter  a duration such as 72h (the default, match.DefaultStaleAfter)
const TypeVerdicts = "verdicts"

// VerdictKinds are the values of verdict.
var VerdictKinds = []string{"stale", "eol", "unmatched"}

type verdictsQuery struct {
	Verdict    string `json:"verdict"`
	StaleAfter string `json:"staleAfter"`

	staleAfter time.Duration
}

func init() { registerQueryType(TypeVerdicts, queryHandler{check: checkVerdicts, run: runVerdicts}) }

func parseVerdictsQuery(raw []byte) (verdictsQuery, error) {
	var vq verdictsQuery
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &vq); err != nil {
			return vq, fmt.Errorf("query JSON: %w", err)
		}
	}
	if vq.Verdict == "" {
		vq.Verdict = VerdictKinds[0]
	}
	if !slices.Contains(VerdictKinds, vq.Verdict) {
		return vq, fmt.Errorf("unknown verdict %q (want one of %s)", vq.Verdict, strings.Join(VerdictKinds, ", "))
	}
	vq.staleAfter = match.DefaultStaleAfter
	if vq.StaleAfter != "" {
		d, err := time.ParseDuration(vq.StaleAfter)
		if err != nil || d <= 0 {
			return vq, fmt.Errorf("staleAfter %q: want a positive duration such as 72h", vq.StaleAfter)
		}
		vq.staleAfter = d
	}
	return vq, nil
}

func checkVerdicts(_ *Query, raw []byte) error {
	_, err := parseVerdictsQuery(raw)
	return err
}

// runVerdicts judges staleness at the time of the query, as the API does:
// a stale host is stale now, whatever range the dashboard shows.
func runVerdicts(ctx context.Context, st store.Store, _ Query, raw []byte, _ backend.TimeRange) (*data.Frame, error) {
	vq, err := parseVerdictsQuery(raw)
	if err != nil {
		return nil, err
	}
	var fr *data.Frame
	switch vq.Verdict {
	case "stale":
		now := time.Now()
		hosts, err := match.StaleHosts(ctx, st, now, vq.staleAfter)
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		var (
			id, name, osEco []string
			last            []time.Time
			age             []float64
		)
		for _, h := range hosts {
			id, name, osEco = append(id, h.HostID), append(name, h.Hostname), append(osEco, h.OS)
			last = append(last, h.LastScannedAt.UTC())
			age = append(age, math.Round(now.Sub(h.LastScannedAt).Hours()/24*10)/10)
		}
		fr = data.NewFrame("stale hosts",
			data.NewField("host_id", nil, id), data.NewField("hostname", nil, name), data.NewField("os", nil, osEco),
			data.NewField("last_scanned_at", nil, last), data.NewField("last_scan_age_days", nil, age))
		fr.Meta = &data.FrameMeta{Notices: []data.Notice{{Severity: data.NoticeSeverityInfo,
			Text: fmt.Sprintf("stale: last scan over %s ago; a stale host never counts as patched or compliant", vq.staleAfter)}}}
	case "eol":
		eol, err := match.EOLFindings(ctx, st, "")
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		var (
			id, name, osEco, basis, source []string
			date                           []time.Time
			days                           []int64
		)
		for _, f := range eol {
			id, name, osEco = append(id, f.HostID), append(name, f.Hostname), append(osEco, f.OS)
			date, days = append(date, f.EOLDate.UTC()), append(days, f.DaysPastEOL)
			basis, source = append(basis, f.Basis), append(source, f.Source)
		}
		fr = data.NewFrame("end-of-life hosts",
			data.NewField("host_id", nil, id), data.NewField("hostname", nil, name), data.NewField("os", nil, osEco),
			data.NewField("eol_date", nil, date), data.NewField("days_past_eol", nil, days),
			data.NewField("basis", nil, basis), data.NewField("source", nil, source))
	default: // unmatched
		un, err := match.UnmatchedPackages(ctx, st, "")
		if err != nil {
			return nil, backend.DownstreamError(err)
		}
		var (
			reason, eco  []string
			pkgs, nhosts []uint64
		)
		for _, u := range un {
			reason, eco = append(reason, u.Reason), append(eco, u.Ecosystem)
			pkgs, nhosts = append(pkgs, u.Packages), append(nhosts, u.Hosts)
		}
		fr = data.NewFrame("unmatched packages",
			data.NewField("reason", nil, reason), data.NewField("ecosystem", nil, eco),
			data.NewField("packages", nil, pkgs), data.NewField("hosts", nil, nhosts))
	}
	if fr.Meta == nil {
		fr.Meta = &data.FrameMeta{}
	}
	fr.Meta.Type = data.FrameTypeTable
	return fr, nil
}
