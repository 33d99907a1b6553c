package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// storeFlags are the flags every subcommand that touches ClickHouse shares,
// so --store and friends mean the same everywhere (and PATCHGRID_STORE,
// PATCHGRID_DATA_DIR, ... through parseFlags).
type storeFlags struct {
	env                       *cliEnv
	cmd                       string // the FlagSet's name: "export", "feeds status" (see openChecks)
	backend, dataDir, chdbLib string
	addr, database, user      string
	passwordFile              string
	tls                       tlsFlags
}

// addStoreFlags registers the store flags on fs. Defaults come from env so
// in-process tests control them.
func addStoreFlags(fs *flag.FlagSet, env *cliEnv) *storeFlags {
	f := &storeFlags{env: env, cmd: fs.Name()}
	fs.StringVar(&f.backend, "store", "chdb", "where data lives: chdb (embedded, in --data-dir) or clickhouse (a server at --clickhouse-addr)")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(env), "data directory of the embedded chdb store (one process at a time)")
	fs.StringVar(&f.chdbLib, "chdb-lib", store.DefaultCHDBLib(env.getenv), "path of libchdb.so, for --store chdb")
	fs.StringVar(&f.addr, "clickhouse-addr", "127.0.0.1:9000", "ClickHouse server native-protocol host:port, for --store clickhouse")
	fs.StringVar(&f.database, "clickhouse-db", "patchgrid", "database to use (created if missing; both stores)")
	fs.StringVar(&f.user, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&f.passwordFile, "clickhouse-password-file", "", "file holding the ClickHouse password (else $"+envClickHousePassword+"; never a flag)")
	f.tls.add(fs, "clickhouse", "the ClickHouse server (use its secure native port, tcp_port_secure)")
	return f
}

// defaultDataDir is $XDG_DATA_HOME/patchgrid, else ~/.local/share/patchgrid.
func defaultDataDir(env *cliEnv) string {
	if x := env.getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "patchgrid")
	}
	if h := env.getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "patchgrid")
	}
	return filepath.Join(".patchgrid", "data")
}

func (f *storeFlags) config() (store.Config, error) {
	password, err := readSecret(f.env, envClickHousePassword, "clickhouse-password-file", f.passwordFile)
	if err != nil {
		return store.Config{}, err
	}
	tlsCfg, err := f.tls.client().Load()
	if err != nil {
		return store.Config{}, fmt.Errorf("clickhouse %w", err)
	}
	return store.Config{
		Backend:     f.backend,
		DataDir:     f.dataDir,
		CHDBLib:     f.chdbLib,
		Addr:        f.addr,
		Database:    f.database,
		User:        f.user,
		Password:    password,
		DialTimeout: 10 * time.Second,
		TLS:         tlsCfg,
	}, nil
}

// open opens the configured store; the error says which one failed.
func (f *storeFlags) open(ctx context.Context) (store.Store, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", f.backend, err)
	}
	if err := f.checkDataDir(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", f.backend, err)
	}
	f.warnStale(ctx, st)
	return st, nil
}
