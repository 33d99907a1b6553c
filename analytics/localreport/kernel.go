package localreport

import (
	"context"
	"fmt"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// sqlKernelStates asks the store's patchgrid_kernel_state function
// (schemas/migrations/0005_snapshots.sql), the rule host_findings and the
// KPI tables apply, so the local report counts kernels as the fleet does.
// Binds: kernel_running, then the names, versions and arches.
const sqlKernelStates = `SELECT t.1, t.2, t.3, patchgrid_kernel_state(t.1, t.2, t.3, ?)
FROM (SELECT arrayJoin(arrayZip(?, ?, ?)) AS t)`

type pkgKey struct{ name, version, arch string }

// kernelStates returns the kernel state (empty: not a kernel image; running;
// not_running) of each package, for a scan whose running kernel is known.
func kernelStates(ctx context.Context, st store.Store, running string, pkgs []Package) (map[pkgKey]string, error) {
	var names, versions, arches []string
	seen := map[pkgKey]bool{}
	for _, p := range pkgs {
		k := pkgKey{p.Name, p.Version, p.Arch}
		if !seen[k] {
			seen[k] = true
			names, versions, arches = append(names, p.Name), append(versions, p.Version), append(arches, p.Arch)
		}
	}
	out := map[pkgKey]string{}
	if len(names) == 0 {
		return out, nil
	}
	rows, err := st.Query(ctx, sqlKernelStates, running, names, versions, arches)
	if err != nil {
		return nil, fmt.Errorf("kernel states (running %s): %w", running, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k pkgKey
		var state string
		if err := rows.Scan(&k.name, &k.version, &k.arch, &state); err != nil {
			return nil, fmt.Errorf("kernel states: %w", err)
		}
		out[k] = state
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kernel states: %w", err)
	}
	return out, nil
}
