package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// Bounds of POST /api/v1/outcomes: what one request may hold. A client
// with more sends several requests, or publishes to Kafka.
const (
	maxOutcomeBody     = 8 << 20
	maxOutcomesPerPost = 10000
	// maxRefusedListed bounds the refusals a 422 names.
	maxRefusedListed = 20
)

// outcomesPost is POST /api/v1/outcomes: deployment outcomes (schemas/outcome),
// as JSON lines or one JSON array, decoded strictly and checked against
// plan_actions like the consumer checks them (ingest/outcomes). The request
// is all or nothing: a malformed item is a 400 and an outcome for an
// unknown plan or action (or another host or package than the action's) a
// 422, each naming its line or item, and nothing is stored. Accepted
// outcomes are inserted directly into the outcomes table: `serve` has a
// store but no Kafka producer, and the table's key (plan, action, attempt)
// gives a repeated request, or the same outcome also arriving through
// Kafka, no second effect. The write is audited (action outcome.report) in
// the caller's token name. One Checker serves every request, so a plan's
// actions are read once, not once per request.
func (s *server) outcomesPost() func(http.ResponseWriter, *http.Request) error {
	checker := outcomes.NewChecker(s.cfg.Store)
	return func(w http.ResponseWriter, r *http.Request) error { return s.postOutcomes(w, r, checker) }
}

func (s *server) postOutcomes(w http.ResponseWriter, r *http.Request, checker *outcomes.Checker) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOutcomeBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body: more than %d bytes; send fewer outcomes per request", maxOutcomeBody)}
		}
		return badRequest(fmt.Errorf("body: %v", err))
	}
	items, err := splitOutcomes(raw)
	if err != nil {
		return badRequest(err)
	}
	if len(items) == 0 {
		return badRequest(errors.New("body: no outcomes (want JSON lines or a JSON array of outcome objects)"))
	}
	if len(items) > maxOutcomesPerPost {
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body: %d outcomes, at most %d per request", len(items), maxOutcomesPerPost)}
	}
	outs := make([]outcome.Outcome, len(items))
	for i, it := range items {
		if outs[i], err = outcome.Decode(it.raw); err != nil {
			return badRequest(fmt.Errorf("%s: %v", it.where, err))
		}
	}
	verdicts, err := checker.Check(r.Context(), outs)
	if err != nil {
		return err
	}
	var refused []string
	for i, v := range verdicts {
		if v != nil {
			refused = append(refused, items[i].where+": "+v.Error())
		}
	}
	if len(refused) > 0 {
		n := len(refused)
		if n > maxRefusedListed {
			refused = append(refused[:maxRefusedListed], fmt.Sprintf("and %d more", n-maxRefusedListed))
		}
		return &httpError{status: http.StatusUnprocessableEntity,
			msg: fmt.Sprintf("%d of %d outcomes refused, none stored: %s", n, len(outs), strings.Join(refused, "; "))}
	}
	if err := outcomes.Insert(r.Context(), s.cfg.Store, outs, time.Now()); err != nil {
		return err
	}
	sum := summarize(outs)
	log := s.cfg.Audit
	if log == nil {
		log = audit.New(s.cfg.Store)
	}
	if _, err := log.Append(r.Context(), audit.Event{
		Actor: Caller(r).Name, Action: "outcome.report", Object: sum.object(),
		After: sum.Keys, Detail: sum.detail(),
	}); err != nil {
		return fmt.Errorf("%d outcomes stored, but recording them in the audit trail failed: %w", len(outs), err)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"accepted": len(outs), "plans": sum.Plans, "by_status": sum.ByStatus})
}

// outcomeItem is one outcome of a request body and where it was.
type outcomeItem struct {
	where string // "line 3" or "item 3" (1-based)
	raw   []byte
}

// splitOutcomes cuts a body into its outcomes: a JSON array (first
// non-blank byte '['), else JSON lines, blank lines skipped.
func splitOutcomes(body []byte) ([]outcomeItem, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		var arr []json.RawMessage
		if err := dec.Decode(&arr); err != nil {
			return nil, fmt.Errorf("body: not a JSON array of outcomes: %v", err)
		}
		if dec.More() {
			return nil, errors.New("body: data after the JSON array")
		}
		out := make([]outcomeItem, len(arr))
		for i, m := range arr {
			out[i] = outcomeItem{where: fmt.Sprintf("item %d", i+1), raw: m}
		}
		return out, nil
	}
	var out []outcomeItem
	for i, line := range bytes.Split(body, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, outcomeItem{where: fmt.Sprintf("line %d", i+1), raw: line})
	}
	return out, nil
}

// outcomeSummary is what the audit entry and the answer say of a request.
type outcomeSummary struct {
	Plans    []string
	ByStatus map[string]int
	Keys     []string // plan/action/attempt=status, what the entry's digest covers
}

func summarize(outs []outcome.Outcome) outcomeSummary {
	s := outcomeSummary{ByStatus: map[string]int{}}
	seen := map[string]bool{}
	for _, o := range outs {
		if !seen[o.PlanID] {
			seen[o.PlanID] = true
			s.Plans = append(s.Plans, o.PlanID)
		}
		s.ByStatus[string(o.Status)]++
		s.Keys = append(s.Keys, fmt.Sprintf("%s/%s/%d=%s", o.PlanID, o.ActionID, o.Attempt, o.Status))
	}
	slices.Sort(s.Plans)
	return s
}

// object names what the entry is about: the plan, or the plans (a
// request for many plans is rare; their count keeps the entry short).
func (s outcomeSummary) object() string {
	if len(s.Plans) <= 3 {
		return "plan:" + strings.Join(s.Plans, ",")
	}
	return fmt.Sprintf("plans:%d", len(s.Plans))
}

func (s outcomeSummary) detail() string {
	var parts []string
	for _, st := range outcome.Statuses {
		if n := s.ByStatus[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return fmt.Sprintf("%d outcomes reported (%s)", len(s.Keys), strings.Join(parts, ", "))
}
