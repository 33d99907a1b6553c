package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/patchgrid/patchgrid/schemas/version"
)

// completeCommand is the hidden command the completion scripts call:
// `patchgrid __complete WORD... PARTIAL` prints the candidates for PARTIAL,
// one per line. The scripts stay tiny and always match the binary's own
// commands and flags.
const completeCommand = "__complete"

// The scripts: each asks the binary for candidates and falls back to file
// names when there are none (flags such as --out and --from take files).
const (
	bashCompletion = `# bash completion for patchgrid: source this file, or put it in
# /etc/bash_completion.d/ (patchgrid completion bash > /etc/bash_completion.d/patchgrid)
_patchgrid() {
    local IFS=$'\n'
    COMPREPLY=($(patchgrid __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _patchgrid patchgrid
`
	zshCompletion = `#compdef patchgrid
# zsh completion for patchgrid: put this file on $fpath as _patchgrid
# (patchgrid completion zsh > "${fpath[1]}/_patchgrid"), or source it.
_patchgrid() {
    local -a candidates
    candidates=("${(@f)$(patchgrid __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ -n "${candidates[1]}" ]]; then
        compadd -a candidates
    else
        _files
    fi
}
if [[ "${funcstack[1]}" == "_patchgrid" ]]; then
    _patchgrid "$@"
else
    compdef _patchgrid patchgrid
fi
`
	fishCompletion = `# fish completion for patchgrid:
# patchgrid completion fish > ~/.config/fish/completions/patchgrid.fish
function __patchgrid_complete
    set -l tokens (commandline -opc) (commandline -ct)
    patchgrid __complete $tokens[2..-1] 2>/dev/null
end
complete -c patchgrid -a '(__patchgrid_complete)'
`
)

// runCompletion is `patchgrid completion bash|zsh|fish`.
func runCompletion(_ context.Context, env *cliEnv, args []string) int {
	scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
	if len(args) != 1 {
		printCommandHelp(env.stderr, "completion", subcommands["completion"])
		return exitUsage
	}
	s, ok := scripts[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "patchgrid completion: unknown shell %q (want bash, zsh or fish)\n", args[0])
		return exitUsage
	}
	io.WriteString(env.stdout, s)
	return exitOK
}

// runComplete prints the completions of the last word of words.
func runComplete(ctx context.Context, env *cliEnv, words []string) int {
	for _, c := range complete(ctx, env, words) {
		fmt.Fprintln(env.stdout, c)
	}
	return exitOK
}

var globalFlagNames = []string{"--version", "--log-format", "--log-level", "--config", "--max-feed-age", "--help"}

// flagValues are the values offered after flags whose values are a fixed
// vocabulary.
func flagValues(name string) []string {
	switch name {
	case "ecosystem", "os":
		return version.Ecosystems()
	case "store":
		return []string{"chdb", "clickhouse"}
	case "log-format":
		return []string{"text", "json"}
	case "log-level":
		return []string{"debug", "info", "warn", "error"}
	case "severity", "fail-on":
		return []string{"critical", "high", "medium", "low"}
	}
	return nil
}

func complete(ctx context.Context, env *cliEnv, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	partial, before := words[len(words)-1], words[:len(words)-1]
	filter := func(cands []string) []string {
		var out []string
		for _, c := range cands {
			if strings.HasPrefix(c, partial) {
				out = append(out, c)
			}
		}
		return out
	}
	// The value of a flag with a vocabulary.
	if len(before) > 0 {
		if prev := before[len(before)-1]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") {
			if vals := flagValues(strings.TrimLeft(prev, "-")); vals != nil {
				return filter(vals)
			}
		}
	}
	// Skip the global flags (and their values) before the command.
	i := 0
	for i < len(before) && strings.HasPrefix(before[i], "-") {
		switch strings.TrimLeft(before[i], "-") {
		case "log-format", "log-level", "config", "max-feed-age":
			i++
		}
		i++
	}
	before = before[min(i, len(before)):]
	cmds := commands()
	if len(before) == 0 {
		if strings.HasPrefix(partial, "-") {
			return filter(globalFlagNames)
		}
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		return filter(names)
	}
	name := before[0]
	c, ok := cmds[name]
	if !ok {
		return nil
	}
	args := before[1:]
	if subs, ok := subcommands[name]; ok {
		if len(args) == 0 {
			var names []string
			for _, s := range subs {
				names = append(names, s.name)
			}
			return filter(names)
		}
		args = args[:1] // the subcommand: its flags are what is asked for
	} else {
		args = nil
	}
	if !strings.HasPrefix(partial, "-") {
		return nil // a file or a free value: the shell offers files
	}
	fs := commandFlags(ctx, env, c, args)
	if fs == nil {
		return nil
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	names = append(names, "--help")
	slices.Sort(names)
	return filter(names)
}

// commandFlags returns the FlagSet a command builds for args, without
// running it: parseFlags hands the set over instead of parsing (collect).
func commandFlags(ctx context.Context, env *cliEnv, c command, args []string) *flag.FlagSet {
	var got *flag.FlagSet
	probe := &cliEnv{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: env.getenv,
		config: env.config, global: env.global,
		collect: func(fs *flag.FlagSet) { got = fs },
	}
	c.run(ctx, probe, args)
	return got
}
