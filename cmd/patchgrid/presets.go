package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/patchgrid/patchgrid/analytics/compliance/frameworks"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// listFrameworks is `patchgrid policy presets`: the compliance frameworks
// loaded in the store (migration 0019 loads the shipped presets), with the
// SLA days in force for each and the source each cites.
func listFrameworks(ctx context.Context, env *cliEnv, st store.Store) int {
	loaded, err := frameworks.List(ctx, st)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid policy presets: %v\n", err)
		return exitFailure
	}
	if len(loaded) == 0 {
		fmt.Fprintln(env.stderr, "patchgrid policy presets: no compliance frameworks in this store (they need ClickHouse 23.8 or chDB)")
		return exitFailure
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FRAMEWORK\tSCOPE\tSLA POLICY\tDAYS (crit/high/med/low/none/unknown)\tKEV DUE DATE\tSOURCE")
	for _, l := range loaded {
		var days []string
		for _, s := range severity.All {
			if d, ok := l.Days[s]; ok {
				days = append(days, fmt.Sprint(d))
			} else {
				days = append(days, "-")
			}
		}
		kev := "no"
		if l.KEVDueDate {
			kev = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Scope, l.Policy, strings.Join(days, "/"), kev, l.Source)
	}
	tw.Flush()
	fmt.Fprintln(env.stdout, "\nPosture per framework: patchgrid report, GET /api/v1/posture, or SELECT * FROM compliance_posture.")
	return exitOK
}

// showFrameworkPreset prints a shipped preset file: its rule and the
// source it cites, in its comments.
func showFrameworkPreset(env *cliEnv, id string) int {
	src, ok := frameworks.PresetSource(id)
	if !ok {
		ps, _ := frameworks.Presets()
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		fmt.Fprintf(env.stderr, "patchgrid policy presets: unknown framework %q (shipped: %s)\n", id, strings.Join(ids, ", "))
		return exitUsage
	}
	fmt.Fprint(env.stdout, string(src))
	return exitOK
}
