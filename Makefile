# patchgrid. Everything downloaded (chDB, Kafka jars) and the test services'
# data live outside the repo in $PATCHGRID_CACHE (default ~/.cache/patchgrid);
# see scripts/.
#
#   make deps            install chDB, the Kafka jars, ClickHouse, Chromium and the report schemas (each skipped when present)
#   make build           bin/patchgrid
#   make test            deps (and the oldest Grafana's packages), test services up, go vet, go test (PKGS=./... TEST_TIMEOUT=20m)
#   make run             bin/patchgrid run on the embedded store; flags in ARGS="..."
#   make services-up     ClickHouse on 127.0.0.1:19000, Kafka on 127.0.0.1:19092 (they stay up)
#   make services-down   stop them
#   make fuzz            every fuzz target (or those in FUZZ_PKGS) for FUZZTIME (default 10s);
#                        FUZZ_MATCH, FUZZ_PARALLEL, FUZZ_LOG: see scripts/fuzz.sh; runs are recorded in FUZZING.md
#   make bench           full benchmark vs ceilings and OSV-Scanner; rewrites the current table of bench/RESULTS.md (BENCH_ARGS="...")
#   make bench-quick     the same harness in under 2 minutes (CI smoke; asserts nothing about speed)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

PKGS ?= ./...
TEST_TIMEOUT ?= 30m
ARGS ?=
FUZZ_PKGS ?=
FUZZTIME ?= 10s

.PHONY: deps deps-chdb deps-kafka deps-clickhouse deps-chromium deps-report-schemas deps-grafana-ts-oldest build services-up services-down \
	services-status test run fuzz bench bench-quick grafana-plugin grafana-plugin-typecheck

deps: deps-chdb deps-kafka deps-clickhouse deps-chromium deps-report-schemas

deps-chdb:
	bash scripts/install-chdb.sh >/dev/null

deps-kafka:
	bash scripts/install-kafka.sh >/dev/null

deps-clickhouse:
	bash scripts/install-clickhouse.sh

deps-chromium:
	bash scripts/install-chromium.sh >/dev/null

# SARIF 2.1.0 and CycloneDX 1.6 JSON schemas (npm) for the local report tests.
deps-report-schemas:
	bash scripts/install-report-schemas.sh >/dev/null

# Oldest-Grafana check (issue 17): the @grafana packages of the oldest Grafana
# plugin.json claims, for TestTypecheckOldest (about 600 MB and minutes to
# install, once, into $PATCHGRID_CACHE/grafana-plugin-ts-oldest; skipped
# while typecheck-oldest/package-lock.json is unchanged). Only `make test`
# needs them.
deps-grafana-ts-oldest:
	bash grafana-plugin/npm-ci.sh grafana-plugin/typecheck-oldest grafana-plugin-ts-oldest >/dev/null

# `patchgrid --version` prints these (the Go toolchain's own VCS stamp is
# off where GOFLAGS has -buildvcs=false).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
build:
	go build -ldflags "-X main.buildVersion=$(VERSION) -X main.buildCommit=$(COMMIT)" -o bin/patchgrid ./cmd/patchgrid

services-up: deps-kafka deps-clickhouse
	bash scripts/services.sh up

services-down:
	bash scripts/services.sh down

services-status:
	bash scripts/services.sh status

# The services stay up after the tests, so the next run starts at once;
# 'make services-down' stops them (.ci/run always does).
test: deps deps-grafana-ts-oldest services-up
	TEST_TIMEOUT=$(TEST_TIMEOUT) bash scripts/gotest.sh $(PKGS)

run: deps-chdb build
	PATCHGRID_SHARED_DATA="$${PATCHGRID_SHARED_DATA:-$(CURDIR)/../shared/data}" PATCHGRID_CHDB_LIB="$$(bash scripts/install-chdb.sh 2>/dev/null)" bin/patchgrid run $(ARGS)

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh $(FUZZ_PKGS)

BENCH_ARGS ?=

# Services it starts are stopped again; ones already up are left up.
bench: deps
	go build -o bin/pgbench ./bench/cmd/pgbench
	PATCHGRID_CHDB_LIB="$$(bash scripts/install-chdb.sh 2>/dev/null)" bin/pgbench $(BENCH_ARGS)

bench-quick: deps
	go build -o bin/pgbench ./bench/cmd/pgbench
	PATCHGRID_CHDB_LIB="$$(bash scripts/install-chdb.sh 2>/dev/null)" bin/pgbench -quick $(BENCH_ARGS)

# The Grafana data source plugin as Grafana loads it, in grafana-plugin/dist/
# (made anew): plugin.json, img/, the frontend bundle module.js (AMD, built
# and checked by bundle.sh with esbuild from $PATCHGRID_CACHE; needs node and
# npm) and the backend binary. See grafana-plugin/README.md.
# The backend is static and stripped (PLUGIN_TAGS=patchgrid_static: no ELF
# interpreter, runs on glibc and musl Grafana images) and uses a ClickHouse
# server; `make grafana-plugin PLUGIN_TAGS=` builds the glibc-only variant
# that can also load chDB (purego needs the dynamic loader).
PLUGIN_TAGS ?= patchgrid_static
grafana-plugin:
	rm -rf grafana-plugin/dist
	mkdir -p grafana-plugin/dist/img
	bash grafana-plugin/bundle.sh grafana-plugin/dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath $(if $(PLUGIN_TAGS),-tags $(PLUGIN_TAGS)) -ldflags '-s -w' -o grafana-plugin/dist/gpx_patchgrid_linux_amd64 ./grafana-plugin/pkg
	cp grafana-plugin/src/plugin.json grafana-plugin/dist/
	cp grafana-plugin/src/img/logo.svg grafana-plugin/dist/img/
	cp -r grafana-plugin/src/dashboards grafana-plugin/dist/

# Strict tsc --noEmit of the frontend; node_modules live in $PATCHGRID_CACHE.
grafana-plugin-typecheck:
	bash grafana-plugin/typecheck.sh
	bash grafana-plugin/typecheck.sh oldest
