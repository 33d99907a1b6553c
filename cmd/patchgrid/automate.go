package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// automateActor names the simulated automation in the audit trail (the
// gate decisions deploy.Status records).
const automateActor = "patchgrid run (simulated automation)"

// automation is what the run's automation stage needs: where the fleet's
// scans and the outcomes travel, and how many due actions it may play.
type automation struct {
	st           store.Store
	fleet        *simulate.Fleet
	broker       *runBroker
	kconn        kafkaconn.Config
	scanTopic    string
	outcomeTopic string
	partitions   int
	maxActions   int
	log          *slog.Logger
	// refreshed: play refreshed the store after its rescans (it does not
	// when it played nothing).
	refreshed bool
}

// automationLoop is what the stage did, and the plan's loop as the
// deployment KPIs read it.
type automationLoop struct {
	PlanID           string
	First            time.Time // the automation's clock at the start (now)
	Last             time.Time // the start of the last window it played
	Windows          int       // windows (rounds) in which it played actions
	Played           int       // actions played (at most maxActions)
	Capped           bool      // due actions were left for want of maxActions
	Foreign          int       // due actions on hosts the simulation does not own (this machine)
	Hosts            int       // hosts deployed to and rescanned
	Outcomes         int
	OutcomesRejected int64 // dead-lettered by the outcome consumer
	Rescans          int
	Plan             map[string]any // the plan's row of kpi_deploy_plans
}

// play runs the current plan's due actions on the simulated fleet: the
// outcomes go to the outcomes topic and the rescans to the scan topic,
// through the production producers and consumers; then matching and an
// incremental refresh bring the action states and deployment KPIs up to
// date. With no plan, or nothing due, it plays nothing.
func (a *automation) play(ctx context.Context) (*automationLoop, error) {
	at := time.Now().UTC().Truncate(time.Second)
	am := &simulate.Automator{Fleet: a.fleet}
	var loop *automationLoop
	hosts := map[string]bool{}
	// Each round evaluates the gates at the clock and plays what is due;
	// when nothing is, the clock moves to the plan's next window (a new
	// plan's first window usually opens later), as automation would wait
	// for it. Outcomes are ingested after each round: the next round's
	// gates count them.
	for round := 0; round < maxWindows && (loop == nil || loop.Played < a.maxActions); round++ {
		rep, err := a.due(ctx, at)
		if errors.Is(err, deploy.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if loop == nil {
			loop = &automationLoop{PlanID: rep.Plan.ID, First: at}
		}
		if len(rep.Due.Actions) == 0 {
			var next time.Time
			if err := queryRow(ctx, a.st, sqlNextWindow, []any{rep.Plan.ID, at}, &next); err != nil {
				return nil, fmt.Errorf("automation: next window of plan %s: %w", rep.Plan.ID, err)
			}
			if !next.After(at) {
				break
			}
			at = next
			continue
		}
		var acts []simulate.PlannedAction
		for _, d := range rep.Due.Actions {
			if loop.Played+len(acts) == a.maxActions {
				loop.Capped = true
				break
			}
			acts = append(acts, simulate.PlannedAction{PlanID: rep.Plan.ID, ActionID: d.ActionID, HostID: d.HostID,
				Package: d.Package, TargetVersion: d.TargetVersion, Ring: d.Ring, Wave: d.Wave, Attempt: d.Attempt})
		}
		res, err := am.Automate(ctx, acts, at)
		if err != nil {
			return nil, err
		}
		loop.Windows++
		loop.Last = at
		loop.Played += len(acts)
		loop.Foreign += res.Foreign
		loop.Outcomes += len(res.Outcomes)
		loop.Rescans += len(res.Rescans)
		for _, s := range res.Rescans {
			hosts[s.HostID] = true
			if s.ScannedAt.After(at) {
				at = s.ScannedAt
			}
		}
		at = at.Add(time.Minute)
		if len(res.Outcomes) == 0 {
			break // only hosts the simulation does not own are due
		}
		if err := a.publish(ctx, res); err != nil {
			return nil, err
		}
		ost, err := outcomes.Run(ctx, consumer.Config{Brokers: a.broker.addrs, Kafka: a.kconn, Topic: a.outcomeTopic, Drain: true, Logger: a.log}, a.st)
		if err != nil {
			return nil, fmt.Errorf("automation: ingest outcomes: %w", err)
		}
		loop.OutcomesRejected += ost.DeadLettered
	}
	if loop == nil || loop.Outcomes == 0 {
		return loop, nil
	}
	loop.Hosts = len(hosts)
	if _, err := consumer.Run(ctx, consumer.Config{Brokers: a.broker.addrs, Kafka: a.kconn, Topic: a.scanTopic, Drain: true, Logger: a.log}, a.st); err != nil {
		return nil, fmt.Errorf("automation: ingest rescans: %w", err)
	}
	a.broker.release(consumer.DefaultGroupID, a.scanTopic)
	if _, err := (&match.Job{Store: a.st, Log: a.log}).Run(ctx, match.Incremental); err != nil {
		return nil, fmt.Errorf("automation: match rescans: %w", err)
	}
	if _, err := (&refresh.Job{Store: a.st, Log: a.log}).Run(ctx, refresh.Incremental); err != nil {
		return nil, fmt.Errorf("automation: refresh: %w", err)
	}
	a.refreshed = true
	t, err := kpi.RunDeploy(ctx, a.st, "plans", kpi.DeployQuery{Value: loop.PlanID})
	if err != nil {
		return nil, err
	}
	recs := t.Records()
	if len(recs) != 1 {
		return nil, fmt.Errorf("automation: kpi_deploy_plans has %d rows for plan %s after the refresh, want 1", len(recs), loop.PlanID)
	}
	loop.Plan = recs[0]
	return loop, nil
}

// maxWindows bounds the rounds of the automation stage (windows played, or
// skipped because nothing was due): each evaluates every gate of the plan.
const maxWindows = 6

// sqlNextWindow is the first window of plan ? that opens after ?: where the
// simulated automation waits when nothing is due now.
const sqlNextWindow = `SELECT min(window_start) FROM plan_actions WHERE plan_id = ? AND status != 'unscheduled' AND window_start > ?`

// due evaluates the current plan's gates at at and lists what may run then.
func (a *automation) due(ctx context.Context, at time.Time) (*deploy.Report, error) {
	rep, err := deploy.Status(ctx, deploy.Config{Store: a.st, Audit: audit.New(a.st), Actor: automateActor, Now: at, Log: a.log}, "", true)
	if err != nil && !errors.Is(err, deploy.ErrNotFound) {
		return nil, fmt.Errorf("automation: the current plan's due actions at %s: %w", at.Format(time.RFC3339), err)
	}
	return rep, err
}

func queryRow(ctx context.Context, st store.Store, q string, args []any, dst ...any) error {
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// publish sends the outcomes (key: host id, as automation does) and the
// rescans.
func (a *automation) publish(ctx context.Context, res simulate.Automation) error {
	for _, topic := range []string{a.outcomeTopic, a.outcomeTopic + ".dlq"} {
		if err := publish.EnsureTopicWith(ctx, a.kconn, a.broker.addrs, topic, a.partitions); err != nil {
			return fmt.Errorf("automation: %w", err)
		}
	}
	op, err := publish.New(publish.Config{Brokers: a.broker.addrs, Topic: a.outcomeTopic, Conn: a.kconn})
	if err != nil {
		return fmt.Errorf("automation: outcome producer: %w", err)
	}
	msgs := make([]publish.Message, len(res.Outcomes))
	for i, o := range res.Outcomes {
		v, err := outcome.Encode(o)
		if err != nil {
			op.Close()
			return fmt.Errorf("automation: encode outcome %s of plan %s: %w", o.ActionID, o.PlanID, err)
		}
		msgs[i] = publish.Message{Key: []byte(o.HostID), Value: v}
	}
	if err := op.PublishBatch(ctx, msgs); err != nil {
		op.Close()
		return fmt.Errorf("automation: publish %d outcomes: %w", len(msgs), err)
	}
	if err := op.Close(); err != nil {
		return fmt.Errorf("automation: flush outcomes: %w", err)
	}
	sp, err := publish.New(publish.Config{Brokers: a.broker.addrs, Topic: a.scanTopic, Conn: a.kconn})
	if err != nil {
		return fmt.Errorf("automation: scan producer: %w", err)
	}
	for i := range res.Rescans {
		if err := sp.Publish(ctx, &res.Rescans[i]); err != nil {
			sp.Close()
			return fmt.Errorf("automation: %w", err)
		}
	}
	if err := sp.Close(); err != nil {
		return fmt.Errorf("automation: flush rescans: %w", err)
	}
	return nil
}

// writeLoop prints the patch loop of the current plan: plan → outcomes →
// rescans → verified, with the failure and rollback rates as
// kpi_deploy_plans has them.
func writeLoop(w io.Writer, l *automationLoop, a *automation) {
	fmt.Fprintln(w)
	if l == nil {
		fmt.Fprintln(w, "patch loop: no plan, nothing for the simulated automation to play")
		return
	}
	fmt.Fprintf(w, "patch loop of plan %s (simulated automation; patchgrid plan status %s):\n", l.PlanID, l.PlanID)
	if l.Windows == 0 {
		fmt.Fprintf(w, "  plan:     nothing due in the plan's next %d windows (gates closed, or only unscheduled actions)\n", maxWindows)
		return
	}
	fmt.Fprintf(w, "  plan:     %d due actions played in %d windows, %s .. %s UTC", l.Played, l.Windows,
		l.First.Format("2006-01-02 15:04"), l.Last.Format("2006-01-02 15:04"))
	if l.Capped {
		fmt.Fprintf(w, " (stopped at --automate-actions %d)", a.maxActions)
	}
	if l.Foreign > 0 {
		fmt.Fprintf(w, "; %d left alone (hosts the simulation does not own)", l.Foreign)
	}
	if l.Last.After(time.Now()) {
		fmt.Fprint(w, "; the simulation's clock moves on from window to window, as automation would wait for them")
	}
	fmt.Fprintln(w)
	if l.Plan == nil {
		fmt.Fprintln(w, "  nothing to deploy on the simulated fleet")
		return
	}
	n := func(col string) any { return l.Plan[col] }
	fmt.Fprintf(w, "  outcomes: %d published to %s (%d rejected): %v deployments, %v failed, %v rolled back, %v skipped\n",
		l.Outcomes, a.outcomeTopic, l.OutcomesRejected, n("deployments"), n("failed_attempts"), n("rolled_back_attempts"), n("skipped"))
	fmt.Fprintf(w, "  rescans:  %d rescans of %d hosts\n", l.Rescans, l.Hosts)
	fmt.Fprintf(w, "  verified: %v verified, %v still exposed, %v awaiting a rescan, %v unverified\n",
		n("verified"), n("still_exposed"), n("succeeded"), n("unverified"))
	fmt.Fprintf(w, "  failure rate %s, rollback rate %s (kpi_deploy_plans; the simulation fails %.0f%% of host deployments, %.0f%% of failures as rollbacks)\n",
		pct(n("failure_rate_pct")), pct(n("rollback_rate_pct")), 100*a.fleet.FailureRate(), 100*a.fleet.RollbackShare())
}

// pct formats a percentage column of a KPI row; null (NaN) is n/a.
func pct(v any) string {
	if f, ok := v.(float64); ok && !math.IsNaN(f) {
		return fmt.Sprintf("%.1f%%", f)
	}
	return "n/a"
}
