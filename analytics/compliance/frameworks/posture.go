package frameworks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Query selects posture rows: the views compliance_posture and
// compliance_posture_trend (0019_posture.sql), as of the last refresh.
type Query struct {
	// Framework is one framework id; "" = every loaded framework.
	Framework string
	// Dimension is the breakdown (kpi.Dimensions); "" = all (the fleet).
	Dimension string
	// Value is one ring / owner / os / criticality; "" = every one.
	Value string
}

// ErrUnknownFramework marks a framework id that is not loaded: a mistyped
// id must not read as "no posture rows, nothing overdue".
var ErrUnknownFramework = errors.New("unknown compliance framework")

// where checks q against st and builds its filter.
func (q Query) where(ctx context.Context, st store.Store) (string, []any, error) {
	if q.Dimension == "" {
		q.Dimension = "all"
	}
	if !slices.Contains(kpi.Dimensions, q.Dimension) {
		return "", nil, fmt.Errorf("unknown dimension %q (want one of %s)", q.Dimension, strings.Join(kpi.Dimensions, ", "))
	}
	where, args := []string{"dimension = ?"}, []any{q.Dimension}
	if q.Value != "" {
		where, args = append(where, "dim_value = ?"), append(args, q.Value)
	}
	if q.Framework != "" {
		loaded, err := List(ctx, st)
		if err != nil {
			return "", nil, err
		}
		var ids []string
		for _, l := range loaded {
			ids = append(ids, l.ID)
		}
		if !slices.Contains(ids, q.Framework) {
			return "", nil, fmt.Errorf("%w %q (loaded: %s)", ErrUnknownFramework, q.Framework, strings.Join(ids, ", "))
		}
		where, args = append(where, "framework = ?"), append(args, q.Framework)
	}
	return strings.Join(where, " AND "), args, nil
}

// Posture reads compliance_posture: per framework and group, the hosts,
// compliant hosts, overdue exposures (apart: those an exception accepts)
// and the exceptions in force.
func Posture(ctx context.Context, st store.Store, q Query) (*export.Table, error) {
	where, args, err := q.where(ctx, st)
	if err != nil {
		return nil, err
	}
	return read(ctx, st, "SELECT * FROM compliance_posture WHERE "+where+" ORDER BY framework, dim_value", args)
}

// Trend reads compliance_posture_trend: per framework and group, the days
// on which exposures became or stopped being overdue, with the overdue
// exposures and non-compliant hosts at the end of each. Every day is read:
// a day without a row carries the last values over, so a window's first
// value may come from before it.
func Trend(ctx context.Context, st store.Store, q Query) (*export.Table, error) {
	where, args, err := q.where(ctx, st)
	if err != nil {
		return nil, err
	}
	return read(ctx, st, "SELECT * FROM compliance_posture_trend WHERE "+where+" ORDER BY framework, dim_value, day", args)
}

func read(ctx context.Context, st store.Store, query string, args []any) (*export.Table, error) {
	rows, err := st.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("compliance posture: %w", err)
	}
	t, err := export.ReadTable(rows, 0)
	if err != nil {
		return nil, fmt.Errorf("compliance posture: %w", err)
	}
	return t, nil
}
