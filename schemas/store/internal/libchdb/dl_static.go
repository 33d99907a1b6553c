//go:build patchgrid_static

package libchdb

import "errors"

// ErrStatic is Load's error in a binary built with the patchgrid_static
// tag: a fully static binary (no ELF interpreter, so it runs on glibc and
// musl systems alike, e.g. Grafana's Alpine images) has no dynamic loader
// and cannot load libchdb.so. Such a binary uses a ClickHouse server.
var ErrStatic = errors.New("this binary is statically linked (built with -tags patchgrid_static) and cannot load libchdb.so: use the clickhouse backend, or a build without that tag")

func dlopen(string) (uintptr, error) { return 0, ErrStatic }

func bind(uintptr, string, any) error { return ErrStatic }
