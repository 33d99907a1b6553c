// Package schemas holds patchgrid's ClickHouse schema: the migrations in
// migrations/, applied in order by Migrate.
//
// Writing a migration: name it NNNN_name.sql; end every statement with ';'
// at the end of a line; make every statement idempotent (IF NOT EXISTS),
// because a migration that fails halfway is re-run from its first statement
// and two processes may migrate at once. A file that needs a newer
// ClickHouse than the 2018 server starts with "-- patchgrid:min-server
// 23.8"; its first comment sentence says what old servers go without.
// Never edit an applied migration: add a new one (Migrate warns when an
// applied file's checksum changed, and does not re-run it).
package schemas

import (
	"bufio"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded migrations/NNNN_name.sql file.
type Migration struct {
	Version  int
	Name     string // file name without .sql, e.g. "0001_inventory"
	Checksum string // sha256 of the file, hex
	// MinServer is the oldest ClickHouse the file runs on, from a
	// "-- patchgrid:min-server 23.8" line in its leading comments; zero
	// when it runs everywhere (down to 18.16).
	MinServer struct{ Major, Minor int }
	// Summary is the first sentence of the leading comment: what an old
	// server goes without when the file is skipped.
	Summary    string
	Statements []string
}

// MinServerText is "23.8", or "" when the migration has no minimum.
func (m Migration) MinServerText() string {
	if m.MinServer.Major == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", m.MinServer.Major, m.MinServer.Minor)
}

var (
	fileRE      = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)
	minServerRE = regexp.MustCompile(`^--\s*patchgrid:min-server\s+(\d+)\.(\d+)\s*$`)
)

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFiles, "migrations")
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		mig, err := parseMigration(string(body))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		mig.Version, mig.Name, mig.Checksum = v, strings.TrimSuffix(e.Name(), ".sql"), hex.EncodeToString(sum[:])
		out = append(out, mig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// parseMigration splits a file into statements: a statement ends at a line
// whose code ends with ';'. Comment lines are dropped; the leading comment
// block carries directives and the summary.
func parseMigration(body string) (Migration, error) {
	var m Migration
	var cur strings.Builder
	leading := true
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			if leading {
				if d := minServerRE.FindStringSubmatch(trimmed); d != nil {
					m.MinServer.Major, _ = strconv.Atoi(d[1])
					m.MinServer.Minor, _ = strconv.Atoi(d[2])
				} else if strings.HasPrefix(trimmed, "-- patchgrid:") {
					return m, fmt.Errorf("unknown directive %q", trimmed)
				} else if m.Summary == "" || !strings.ContainsAny(m.Summary, ".") {
					m.Summary = strings.TrimSpace(m.Summary + " " + strings.TrimSpace(strings.TrimPrefix(trimmed, "--")))
				}
			}
			continue
		}
		if trimmed == "" {
			if cur.Len() == 0 && m.Summary != "" {
				leading = false
			}
			continue
		}
		leading = false
		code := strings.TrimRight(codeOf(line), " \t\r")
		if !strings.HasSuffix(code, ";") {
			cur.WriteString(line)
			cur.WriteByte('\n')
			continue
		}
		cur.WriteString(strings.TrimSuffix(code, ";"))
		if stmt := strings.TrimSpace(cur.String()); stmt != "" {
			m.Statements = append(m.Statements, stmt)
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		return m, fmt.Errorf("statement without a closing ';': %.80s", rest)
	}
	if i := strings.Index(m.Summary, ". "); i >= 0 {
		m.Summary = m.Summary[:i+1]
	}
	return m, nil
}

// codeOf strips a trailing "-- comment" that is outside string literals.
func codeOf(line string) string {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == '\\' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '\'' || c == '"' || c == '`':
			q = c
		case c == '-' && i+1 < len(line) && line[i+1] == '-':
			return line[:i]
		}
	}
	return line
}

const migrationsDDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`

// Migrate applies the embedded migrations st has not seen yet, in order,
// and returns the names of those it applied. Migrations needing a newer
// ClickHouse than st's are skipped (and logged with what is unavailable);
// they apply on a later run against a newer server. Running it again is a
// no-op.
func Migrate(ctx context.Context, st store.Store, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	return migrate(ctx, st, log, migs)
}

func migrate(ctx context.Context, st store.Store, log *slog.Logger, migs []Migration) ([]string, error) {
	ver, err := st.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := st.Exec(ctx, migrationsDDL); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	done, err := appliedMigrations(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []string
	for _, m := range migs {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				// Editing an applied migration changes nothing in the
				// database; say so rather than pretend.
				log.Warn("migration changed after it was applied; its changes are not re-applied", "migration", m.Name)
			}
			continue
		}
		if m.MinServer.Major > 0 && !ver.AtLeast(m.MinServer.Major, m.MinServer.Minor) {
			log.Warn("migration skipped: ClickHouse too old", "migration", m.Name,
				"needs", m.MinServerText(), "server", ver.Text, "unavailable", m.Summary)
			continue
		}
		for i, stmt := range m.Statements {
			if err := st.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
			}
		}
		err := st.Insert(ctx, "schema_migrations", []string{"version", "name", "checksum", "applied_at"},
			[][]any{{uint32(m.Version), m.Name, m.Checksum, time.Now().UTC()}})
		if err != nil {
			return applied, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		log.Info("migration applied", "migration", m.Name, "statements", len(m.Statements))
		applied = append(applied, m.Name)
	}
	return applied, nil
}

func appliedMigrations(ctx context.Context, st store.Store) (map[int]string, error) {
	rows, err := st.Query(ctx, "SELECT version, checksum FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := map[int]string{}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		done[v] = sum
	}
	return done, rows.Err()
}

// Skipped lists the embedded migrations st's ClickHouse is too old for.
func Skipped(ctx context.Context, st store.Store) ([]Migration, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	ver, err := st.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, m := range migs {
		if m.MinServer.Major > 0 && !ver.AtLeast(m.MinServer.Major, m.MinServer.Minor) {
			out = append(out, m)
		}
	}
	return out, nil
}

// RequireMigrated returns an error when st lacks an embedded migration its
// ClickHouse can run: read-only commands (stdin match, explain, export,
// report, serve) do not migrate, and on a store an older patchgrid made,
// or one never migrated, they would otherwise fail with the engine's
// "unknown table" on some view. The error says what to run; a retry
// without it cannot help.
func RequireMigrated(ctx context.Context, st store.Store) error {
	where := st.Backend()
	if a, ok := st.(interface{ Addr() string }); ok {
		where = a.Addr()
	}
	rows, err := st.Query(ctx, "EXISTS TABLE schema_migrations")
	if err != nil {
		return fmt.Errorf("store %s: look for schema_migrations (a retry may help): %w", where, err)
	}
	var exists uint8
	if rows.Next() {
		err = rows.Scan(&exists)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return fmt.Errorf("store %s: look for schema_migrations (a retry may help): %w", where, err)
	}
	if exists == 0 {
		return fmt.Errorf("store %s holds no patchgrid schema: run `patchgrid migrate` (or load feeds or ingest, which migrate) first", where)
	}
	migs, err := Migrations()
	if err != nil {
		return err
	}
	ver, err := st.ServerVersion(ctx)
	if err != nil {
		return err
	}
	done, err := appliedMigrations(ctx, st)
	if err != nil {
		return fmt.Errorf("store %s: read schema_migrations (a retry may help): %w", where, err)
	}
	var pending []string
	for _, m := range migs {
		if _, ok := done[m.Version]; ok || m.MinServer.Major > 0 && !ver.AtLeast(m.MinServer.Major, m.MinServer.Minor) {
			continue
		}
		pending = append(pending, m.Name)
	}
	if len(pending) > 0 {
		return fmt.Errorf("store %s lacks %d migration(s) of this patchgrid (%s): run `patchgrid migrate` first",
			where, len(pending), strings.Join(pending, ", "))
	}
	return nil
}

// RequireAnalytics returns an error when st's ClickHouse is too old for the
// analytics migrations (the 2018 server can hold ingested inventories but
// not run the KPI views), or when st lacks a migration (RequireMigrated).
// Analytics commands call it before starting.
func RequireAnalytics(ctx context.Context, st store.Store) error {
	skipped, err := Skipped(ctx, st)
	if err != nil {
		return err
	}
	if len(skipped) == 0 {
		return RequireMigrated(ctx, st)
	}
	ver, _ := st.ServerVersion(ctx)
	need := skipped[0]
	for _, m := range skipped {
		if m.MinServer.Major > need.MinServer.Major || m.MinServer.Major == need.MinServer.Major && m.MinServer.Minor > need.MinServer.Minor {
			need = m
		}
	}
	where := st.Backend()
	if a, ok := st.(interface{ Addr() string }); ok {
		where = a.Addr()
	}
	return fmt.Errorf("ClickHouse %s at %s is older than %s, which patchgrid's analytics need; it can hold ingested inventories only (see README)",
		ver.Text, where, need.MinServerText())
}
