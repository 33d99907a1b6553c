package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// runOutcome is `patchgrid outcome report`: deployment outcomes (JSON
// lines, schemas/outcome) from stdin or a file, checked and published to
// the outcomes topic, keyed by host.
func runOutcome(ctx context.Context, env *cliEnv, args []string) int {
	const usage = "usage: patchgrid outcome report [--file FILE] [--kafka-brokers HOST:PORT,...] [--dry-run]"
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, usage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprintln(env.stdout, "Deployment outcomes: 'outcome report' publishes JSON lines of outcomes (schemas/outcome/README.md) to Kafka.")
		fmt.Fprintln(env.stdout, usage)
		return exitOK
	case "report":
	default:
		fmt.Fprintf(env.stderr, "patchgrid outcome: unknown subcommand %q\n%s\n", sub, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("outcome report", flag.ContinueOnError)
	kf := addKafkaFlags(fs, env)
	var (
		file    = fs.String("file", "", "read outcomes from this file (JSON lines) instead of stdin")
		brokers = fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
		topic   = fs.String("topic", outcome.Topic, "Kafka topic of outcomes")
		dryRun  = fs.Bool("dry-run", false, "check the outcomes and print them normalised; publish nothing")
	)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "patchgrid outcome report: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	in, name := env.stdin, "stdin"
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid outcome report: %v\n", err)
			return exitFailure
		}
		defer f.Close()
		in, name = f, *file
	}
	msgs, bad, err := readOutcomes(in, name, env.stderr)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid outcome report: %v\n", err)
		return exitFailure
	}
	if *dryRun {
		for _, m := range msgs {
			fmt.Fprintln(env.stdout, string(m.Value))
		}
	} else if len(msgs) > 0 {
		kconn, err := kf.config()
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid outcome report: %v\n", err)
			return exitUsage
		}
		p, err := publish.New(publish.Config{Brokers: splitList(*brokers), Topic: *topic, Conn: kconn})
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid outcome report: %v\n", err)
			return exitUsage
		}
		pubErr := p.PublishBatch(ctx, msgs)
		if err := p.Close(); err != nil && pubErr == nil {
			pubErr = err
		}
		if pubErr != nil {
			fmt.Fprintf(env.stderr, "patchgrid outcome report: publish to %s: %v\n", *topic, pubErr)
			return exitFailure
		}
	}
	verb := "published to " + *topic
	if *dryRun {
		verb = "checked (dry run)"
	}
	fmt.Fprintf(env.stderr, "patchgrid outcome report: %d outcomes %s, %d rejected\n", len(msgs), verb, bad)
	if bad > 0 {
		return exitFailure
	}
	return exitOK
}

// readOutcomes decodes JSON lines of outcomes. A bad line is reported with
// its number and reason and left out; the good ones still go out (they are
// other hosts' facts), and the caller fails the run.
func readOutcomes(r io.Reader, name string, errw io.Writer) (msgs []publish.Message, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), outcome.MaxMessageBytes+1)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		o, derr := outcome.Decode(b)
		if derr != nil {
			fmt.Fprintf(errw, "patchgrid outcome report: %s:%d: %v\n", name, line, derr)
			bad++
			continue
		}
		enc, eerr := outcome.Encode(o)
		if eerr != nil {
			fmt.Fprintf(errw, "patchgrid outcome report: %s:%d: %v\n", name, line, eerr)
			bad++
			continue
		}
		msgs = append(msgs, publish.Message{Key: []byte(o.HostID), Value: enc})
	}
	if err := sc.Err(); err != nil {
		return nil, bad, fmt.Errorf("%s: line %d: %w", name, line+1, err)
	}
	return msgs, bad, nil
}
