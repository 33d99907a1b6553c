package main

// The CLI's conventions, in one place so every command follows them
// without code of its own: help on stdout with a one-line description and
// --flag spelling, global flags (--version, --log-format, --log-level,
// --config, --max-feed-age), the configuration file, and one log format.

import (
	"errors"
	"flag"
	"fmt"
	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// subcommand is one subcommand of a command that has them.
type subcommand struct {
	name, summary string
}

// subcommands lists the subcommands of the commands that dispatch on a
// first argument, for `patchgrid CMD -h`, help texts and shell completion.
// A command with subcommands must be listed here (TestHelpEverywhere
// checks every command answers -h).
var subcommands = map[string][]subcommand{
	"version": {
		{"key", "print the byte-comparable key of each version read from stdin"},
		{"compare", "compare two versions of an ecosystem (prints <, = or >)"},
		{"ecosystems", "list the ecosystems and their versioning schemes"},
	},
	"feeds": {
		{"load", "load advisory, KEV and EPSS feeds from directories, files or URLs into the store"},
		{"status", "show each loaded feed: records, newest record, last load"},
	},
	"audit": {
		{"verify", "check the hash chain of the audit trail"},
		{"export", "write audit entries as JSON lines"},
		{"head", "print the newest entry's sequence number and hash"},
	},
	"exception": {
		{"request", "ask to accept the risk of an advisory for a scope, until an expiry"},
		{"approve", "approve a requested exception (never by its requester)"},
		{"reject", "reject a requested exception"},
		{"revoke", "end an approved exception early"},
		{"list", "list exceptions"},
	},
	"plan": {
		{"create", "plan remediation: one action per (host, package) under the active policy"},
		{"list", "list plans"},
		{"show", "show a plan by fix, wave or action"},
		{"export", "export a plan (json, csv, arrow, arrow-stream, parquet, ansible)"},
		// deployment verification, gates and holds (issue 13)
		{"status", "where a plan's actions stand, each ring's gate and why, holds; --due: what may run now"},
		{"approve", "lift the hold a rollback put on a fix (package, version) for its group"},
	},
	"policy": {
		{"apply", "apply a policy file as a new version"},
		{"show", "show the active (or a given) policy version"},
		{"diff", "compare two policy versions"},
		{"history", "list the policy versions"},
		{"presets", "list the compliance frameworks (BOD 22-01, PCI DSS 6.3.3, internal SLA) and their sources"},
	},
	"outcome": {
		{"report", "check deployment outcomes (JSON lines) and publish them to Kafka"},
	},
	"token": {
		{"create", "create an API token with a role and an expiry (printed once, stored hashed)"},
		{"list", "list API tokens: id, name, role, state, expiry"},
		{"revoke", "revoke an API token by its id"},
	},
	"completion": {
		{"bash", "bash completion script (source it, or put it in /etc/bash_completion.d)"},
		{"zsh", "zsh completion script (put it on $fpath as _patchgrid)"},
		{"fish", "fish completion script (put it in ~/.config/fish/completions/patchgrid.fish)"},
	},
}

// globalFlags are the flags given before the command (--log-format and
// --log-level are also accepted after it).
type globalFlags struct {
	logFormat  string        // text or json
	logLevel   slog.Level    // default info
	configPath string        // "" = the default location, "-" = none
	maxFeedAge time.Duration // warn when the newest feed record is older; 0 = never
}

const defaultMaxFeedAge = 7 * 24 * time.Hour

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// parseGlobal reads the global flags from the front of args (and
// --log-format/--log-level from anywhere before "--"), then fills the ones
// not given from PATCHGRID_* and the configuration file. It returns the
// remaining arguments.
func parseGlobal(env *cliEnv, args []string) (rest []string, version bool, err error) {
	var g globalFlags
	given := map[string]string{}
	take := func(args []string, i int) (name, val string, n int, ok bool, err error) {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return "", "", 0, false, nil
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "log-format", "log-level", "config", "max-feed-age":
		default:
			return "", "", 0, false, nil
		}
		if hasVal {
			return name, val, 1, true, nil
		}
		if i+1 >= len(args) {
			return "", "", 0, false, fmt.Errorf("flag --%s needs a value", name)
		}
		return name, args[i+1], 2, true, nil
	}
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && !isHelp(args[i]) {
		if a := args[i]; a == "--version" || a == "-version" || a == "-V" {
			version = true
			i++
			continue
		}
		name, val, n, ok, err := take(args, i)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, fmt.Errorf("unknown global flag %s (global flags: --version, --log-format, --log-level, --config, --max-feed-age)", args[i])
		}
		given[name] = val
		i += n
	}
	// --log-format and --log-level also after the command: `patchgrid run
	// --log-format json` is the natural spelling.
	for j := i; j < len(args); {
		if args[j] == "--" {
			rest = append(rest, args[j:]...)
			break
		}
		if name, _, _ := strings.Cut(strings.TrimLeft(args[j], "-"), "="); j > i && strings.HasPrefix(args[j], "-") && (name == "log-format" || name == "log-level") {
			name, val, n, ok, err := take(args, j)
			if err != nil {
				return nil, false, err
			}
			if ok {
				given[name] = val
				j += n
				continue
			}
		}
		rest = append(rest, args[j])
		j++
	}

	g.configPath = given["config"]
	if g.configPath == "" {
		g.configPath = env.getenv("PATCHGRID_CONFIG")
	}
	cfg, err := loadConfig(env, g.configPath)
	if err != nil {
		return nil, false, err
	}
	env.config = cfg
	value := func(name string) string {
		if v, ok := given[name]; ok {
			return v
		}
		if v := env.getenv(envName(name)); v != "" {
			return v
		}
		if v, ok := cfg.scalar(nil, name); ok {
			return v
		}
		return ""
	}
	switch f := value("log-format"); f {
	case "", "text":
		g.logFormat = "text"
	case "json":
		g.logFormat = "json"
	default:
		return nil, false, fmt.Errorf("--log-format %q: want text or json", f)
	}
	if l := value("log-level"); l != "" {
		if err := g.logLevel.UnmarshalText([]byte(l)); err != nil {
			return nil, false, fmt.Errorf("--log-level %q: want debug, info, warn or error", l)
		}
	}
	g.maxFeedAge = defaultMaxFeedAge
	if a := value("max-feed-age"); a != "" {
		d, err := parseAge(a)
		if err != nil {
			return nil, false, fmt.Errorf("--max-feed-age %q: %w", a, err)
		}
		g.maxFeedAge = d
	}
	env.global = g
	return rest, version, nil
}

// parseAge reads a duration with days: 7d, 36h, 90m; 0 turns a check off.
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if _, err := fmt.Sscanf(d, "%g", &n); err != nil || n < 0 {
			return 0, errors.New("want a duration such as 7d, 36h or 0")
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, errors.New("want a duration such as 7d, 36h or 0")
	}
	return v, nil
}

// logger is the one logger of every command: text (slog's key=value) by
// default, JSON lines with --log-format json, at --log-level (default
// info) unless the command asks for a higher minimum (level).
func (env *cliEnv) logger(level slog.Leveler) *slog.Logger {
	min := env.global.logLevel
	if level != nil && level.Level() > min {
		min = level.Level()
	}
	opts := &slog.HandlerOptions{Level: min}
	if env.global.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.stderr, opts))
}

// describe is the one-line description of a command ("export") or
// subcommand ("feeds load").
func describe(name string) string {
	cmd, sub, _ := strings.Cut(name, " ")
	for _, s := range subcommands[cmd] {
		if s.name == sub {
			return s.summary
		}
	}
	if c, ok := commands()[cmd]; ok {
		return c.summary
	}
	return ""
}

// ownUsage is the text a command's own fs.Usage prints, without the flag
// list of flag.PrintDefaults (printHelp lists flags its own way).
func ownUsage(env *cliEnv, fs *flag.FlagSet, own func()) string {
	if own == nil {
		return ""
	}
	var buf strings.Builder
	saved := env.stderr
	env.stderr = &buf
	fs.SetOutput(&buf)
	own()
	env.stderr = saved
	fs.SetOutput(saved)
	text := buf.String()
	if i := strings.Index(text, "\n  -"); i >= 0 {
		text = text[:i]
	}
	return strings.TrimSpace(text)
}

// printHelp writes fs's help to w: the description, the usage (usage: the
// command's own text, if it has one), and every flag as --name, with its
// default and environment variable.
func printHelp(w io.Writer, fs *flag.FlagSet, usage string) {
	name := fs.Name()
	if d := describe(name); d != "" {
		fmt.Fprintf(w, "patchgrid %s: %s\n\n", name, d)
	}
	if usage == "" {
		usage = fmt.Sprintf("usage: patchgrid %s [flags]", name)
	}
	fmt.Fprintln(w, usage)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", quoteDefault(f))
		}
		fmt.Fprintf(w, "        %s [$%s]\n", strings.ReplaceAll(usage, "\n", "\n        "), envName(f.Name))
	})
	fmt.Fprintln(w, "\nA flag given on the command line wins over its PATCHGRID_* variable, which wins over the configuration file (patchgrid -h).")
}

func quoteDefault(f *flag.Flag) string {
	typ, _ := flag.UnquoteUsage(f)
	if typ == "string" || typ == "value" {
		return fmt.Sprintf("%q", f.DefValue)
	}
	return f.DefValue
}

// printCommandHelp is `patchgrid CMD -h` for a command with subcommands.
func printCommandHelp(w io.Writer, name string, subs []subcommand) {
	fmt.Fprintf(w, "patchgrid %s: %s\n\nusage: patchgrid %s <subcommand> [flags]\n\nsubcommands:\n", name, describe(name), name)
	width := 0
	for _, s := range subs {
		width = max(width, len(s.name))
	}
	for _, s := range subs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
	}
	fmt.Fprintf(w, "\n'patchgrid %s <subcommand> -h' lists a subcommand's flags.\n", name)
}

// fileConfig is the configuration file: keys are flag names. A top-level
// key applies to every command with that flag; a command's name (or
// "command subcommand", or a nested map) holds keys for that command only,
// which win over the top level.
//
//	data-dir: /srv/patchgrid
//	log-format: json
//	run:
//	  feeds: [/srv/feeds/advisories, /srv/feeds/kev, /srv/feeds/epss]
//	feeds:
//	  load:
//	    from: [/srv/feeds/advisories]
type fileConfig struct {
	path   string
	values map[string]any
}

// defaultConfigPath is $XDG_CONFIG_HOME/patchgrid/config.yaml, else
// ~/.config/patchgrid/config.yaml.
func defaultConfigPath(env *cliEnv) string {
	if x := env.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "patchgrid", "config.yaml")
	}
	if h := env.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "patchgrid", "config.yaml")
	}
	return ""
}

// loadConfig reads the configuration file: path, else the default
// location, where a missing file is no error. "-" reads none.
func loadConfig(env *cliEnv, path string) (*fileConfig, error) {
	explicit := path != ""
	if path == "-" {
		return &fileConfig{}, nil
	}
	if !explicit {
		path = defaultConfigPath(env)
		if path == "" {
			return &fileConfig{}, nil
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return &fileConfig{}, nil
		}
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	var values map[string]any
	if err := yamlsafe.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return &fileConfig{path: path, values: values}, nil
}

// lookup finds key for the command path (e.g. ["feeds", "load"]): the most
// specific section first, then the top level.
func (c *fileConfig) lookup(path []string, key string) (any, bool) {
	if c == nil || c.values == nil {
		return nil, false
	}
	var sections []map[string]any
	if len(path) > 0 {
		if m, ok := c.values[strings.Join(path, " ")].(map[string]any); ok {
			sections = append(sections, m)
		}
		m := c.values
		for _, p := range path {
			next, ok := m[p].(map[string]any)
			if !ok {
				break
			}
			sections = append([]map[string]any{next}, sections...)
			m = next
		}
	}
	sections = append(sections, c.values)
	for _, s := range sections {
		if v, ok := s[key]; ok {
			if _, isMap := v.(map[string]any); isMap {
				continue // a section, not a value
			}
			return v, true
		}
	}
	return nil, false
}

func (c *fileConfig) scalar(path []string, key string) (string, bool) {
	v, ok := c.lookup(path, key)
	if !ok || v == nil {
		return "", false
	}
	if _, isList := v.([]any); isList {
		return "", false
	}
	return fmt.Sprint(v), true
}

// apply sets f from the file, if the file has it. A list sets a
// repeatable flag once per item; any other flag gets the items joined with
// commas.
func (c *fileConfig) apply(path []string, f *flag.Flag) error {
	v, ok := c.lookup(path, f.Name)
	if !ok || v == nil {
		return nil
	}
	if list, isList := v.([]any); isList {
		_, repeatable := f.Value.(*stringList)
		var items []string
		for _, it := range list {
			items = append(items, fmt.Sprint(it))
		}
		if !repeatable {
			return f.Value.Set(strings.Join(items, ","))
		}
		for _, it := range items {
			if err := f.Value.Set(it); err != nil {
				return err
			}
		}
		return nil
	}
	return f.Value.Set(fmt.Sprint(v))
}
