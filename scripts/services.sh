#!/usr/bin/env bash
# services.sh: the real servers the integration tests use, on loopback only.
#
#   services.sh up     [clickhouse|kafka|all]   start (no-op when already up), wait until ready
#   services.sh down   [clickhouse|kafka|all]   stop what this script started (TERM, then KILL)
#   services.sh status [clickhouse|kafka|all]
#   services.sh env                             print the test env vars (export lines)
#   services.sh clean  [clickhouse|kafka|all]   down, then delete the service's data
#
#   ClickHouse (Debian 18.16): native 127.0.0.1:19000, HTTP 127.0.0.1:18123, no interserver port
#   Kafka 4.1.1, one KRaft node: broker 127.0.0.1:19092, controller 127.0.0.1:19093
#
# Each service has its own config, data, logs and PID file under
# $PATCHGRID_RUN_DIR/<service> (default $PATCHGRID_CACHE/run). Data survives
# down/up, so tests must use their own databases and topics. A service is
# "ours" when its command line names our config file: only such processes are
# ever stopped; a port held by anything else is an error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
PATH="$PATH:/usr/sbin:/sbin"

# The ports can be moved (for a second, private set of services next to the
# one 'make test' uses; give it its own PATCHGRID_RUN_DIR too).
CH_TCP_PORT=${PATCHGRID_SVC_CLICKHOUSE_PORT:-19000}
CH_HTTP_PORT=${PATCHGRID_SVC_CLICKHOUSE_HTTP_PORT:-18123}
KAFKA_PORT=${PATCHGRID_SVC_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${PATCHGRID_SVC_KAFKA_CONTROLLER_PORT:-19093}
# Seconds to wait for a server to become ready, and for one to stop after TERM.
START_TIMEOUT=${PATCHGRID_SERVICES_START_TIMEOUT:-180}
STOP_TIMEOUT=60

svc_dir() { echo "$PATCHGRID_RUN_DIR/$1"; }
pid_file() { echo "$PATCHGRID_RUN_DIR/$1/$1.pid"; }
# The string in an our server's command line that proves it is ours.
marker() {
	case $1 in
	clickhouse) echo "--config-file=$(svc_dir clickhouse)/config.xml" ;;
	kafka) echo "$(svc_dir kafka)/server.properties" ;;
	esac
}
# The log to show when the service fails to start.
main_log() {
	case $1 in
	clickhouse) echo "$(svc_dir clickhouse)/log/clickhouse-server.err.log" ;;
	kafka) echo "$(svc_dir kafka)/log/server.log" ;;
	esac
}
ports() {
	case $1 in
	clickhouse) echo "$CH_TCP_PORT $CH_HTTP_PORT" ;;
	kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
	esac
}

cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
is_ours() { alive "$1" && [[ "$(cmdline "$1")" == *"$(marker "$2")"* ]]; }

# recorded_pid prints the PID from the service's PID file if that process is
# still ours; a stale file (process gone or PID reused) is removed.
recorded_pid() {
	local f pid
	f=$(pid_file "$1")
	[ -f "$f" ] || return 0
	pid=$(cat "$f" 2>/dev/null || true)
	if is_ours "$pid" "$1"; then
		echo "$pid"
	else
		rm -f "$f"
	fi
}

# strays prints PIDs of our servers of this kind that the PID file does not
# name (a PID file lost or overwritten).
strays() {
	local m rec p
	m=$(marker "$1")
	rec=$(recorded_pid "$1")
	# The marker is one whole argument of the server's command line.
	for p in $({ grep -lsazF -e "$m" /proc/[0-9]*/cmdline 2>/dev/null || true; } | cut -d/ -f3); do
		[ "$p" != "$rec" ] && is_ours "$p" "$1" && echo "$p"
	done
	return 0
}

# port_pids prints the PIDs holding a listening TCP socket on port $1 (any
# address, v4 or v6), read from /proc so that no iproute2/lsof is needed.
port_pids() {
	local hex inodes ino
	hex=$(printf ':%04X' "$1")
	inodes=$(awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u)
	# find fails on processes that exit while it walks /proc: not an error.
	for ino in $inodes; do
		find /proc/[0-9]*/fd -lname "socket:\[$ino\]" 2>/dev/null || true
	done | cut -d/ -f3 | sort -u
}
port_listening() {
	local hex
	hex=$(printf ':%04X' "$1")
	awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# stop_pid sends TERM, waits, then KILLs.
stop_pid() {
	local pid=$1 name=$2 i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
		alive "$pid" || return 0
		sleep 0.2
	done
	log "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s of TERM; sending KILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || return 0
		sleep 0.2
	done
	die "$name (pid $pid) survived KILL"
}

# check_ports fails when a port the service needs is held by a process that
# is not ours. Called after our own strays are stopped.
check_ports() {
	local port pids p
	for port in $(ports "$1"); do
		port_listening "$port" || continue
		pids=$(port_pids "$port")
		if [ -z "$pids" ]; then
			die "port $port (needed by $1) is in use by a process this script cannot see; free it, then retry"
		fi
		for p in $pids; do
			die "port $port (needed by $1) is in use by pid $p, which is not a patchgrid test service: $(cmdline "$p" | cut -c1-200). Stop it, then retry"
		done
	done
}

# launch starts "$@" detached (own session, no stdin, output to a log) and
# records the server's own PID: the inner shell writes its PID, then execs.
launch() {
	local name=$1 out=$2
	shift 2
	: >"$(pid_file "$name")"
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file "$name")" "$@" \
		</dev/null >>"$out" 2>&1 9>&- &
	# Wait for the inner shell to record its PID.
	local i
	for ((i = 0; i < 50; i++)); do
		[ -s "$(pid_file "$name")" ] && break
		sleep 0.1
	done
}

# wait_ready polls "ready_$name" until it succeeds, the server dies or the
# timeout passes; on failure it shows the log, stops the server and fails.
wait_ready() {
	local name=$1 logf=$2 pid deadline
	deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		pid=$(recorded_pid "$name")
		if [ -z "$pid" ]; then
			log "$name exited during startup; last lines of $logf:"
			tail -n 40 "$logf" >&2 || true
			die "$name did not start (if its data is damaged: $0 clean $name)"
		fi
		if "ready_$name"; then
			return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "$name not ready after ${START_TIMEOUT}s; last lines of $logf:"
			tail -n 40 "$logf" >&2 || true
			stop_pid "$pid" "$name"
			rm -f "$(pid_file "$name")"
			die "$name did not become ready"
		fi
		sleep 0.5
	done
}

# --- ClickHouse -------------------------------------------------------------

write_clickhouse_config() {
	local d
	d=$(svc_dir clickhouse)
	mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/log"
	cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/services.sh on every 'up'; a change restarts the server. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$d/log/clickhouse-server.log</log>
        <errorlog>$d/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <max_connections>256</max_connections>
    <max_concurrent_queries>64</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
	cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/services.sh. One user, no password, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

ready_clickhouse() {
	clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" -q 'SELECT 1' >/dev/null 2>&1
}

start_clickhouse() {
	command -v clickhouse-server >/dev/null || die "clickhouse-server not installed (run scripts/install-clickhouse.sh)"
	local d
	d=$(svc_dir clickhouse)
	launch clickhouse "$d/log/stdout.log" clickhouse-server "--config-file=$d/config.xml"
	wait_ready clickhouse "$(main_log clickhouse)"
	log "clickhouse ready on 127.0.0.1:$CH_TCP_PORT (pid $(recorded_pid clickhouse), $(clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" -q 'SELECT version()'))"
}

# --- Kafka --------------------------------------------------------------------

write_kafka_config() {
	local d
	d=$(svc_dir kafka)
	mkdir -p "$d/data" "$d/log"
	cat >"$d/server.properties" <<EOF
# Written by scripts/services.sh on every 'up'; a change restarts the server.
# One KRaft node that is both broker and controller, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data

# The project creates its topics itself (as it must against a production
# broker); auto-creation would hide a missing create.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumer groups in tests start at once instead of waiting 3 s for members.
group.initial.rebalance.delay.ms=0

# Small machine: few threads, short retention.
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
	cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$d/log/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
	cat >"$d/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# kafka_jvm is the java command line shared by the server and the tools; the
# log4j config (server or tools) is passed separately.
kafka_jvm=(java -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
	# log4j2 is on the class path only for Kafka's logger-level API; logging goes
	# through slf4j-reload4j, so log4j2's complaint about having no config is noise.
	-Dlog4j2.statusLoggerLevel=OFF
	"-Dkafka.logs.dir=$(svc_dir kafka)/log" -cp "$KAFKA_LIBS/*")

# kafka_tool runs a Kafka command line class, logging warnings to stderr
# rather than into the server's log.
kafka_tool() {
	"${kafka_jvm[@]}" "-Dlog4j.configuration=file:$(svc_dir kafka)/tools-log4j.properties" "$@"
}

# kafka_starting is set while a start of ours waits: only then is the log
# line looked for (a long-running server may have rotated it away).
kafka_starting=
ready_kafka() {
	port_listening "$KAFKA_PORT" || return 1
	if [ -n "$kafka_starting" ]; then
		# Logged once the broker is registered and unfenced.
		grep -q 'Kafka Server started' "$(svc_dir kafka)/log/server.log" 2>/dev/null || return 1
	fi
	# A metadata round trip through a real client, as the tests will do;
	# bounded, since the client's own timeouts are a minute and more.
	timeout 60 "${kafka_jvm[@]}" "-Dlog4j.configuration=file:$(svc_dir kafka)/tools-log4j.properties" \
		org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list \
		>/dev/null 2>&1
}

start_kafka() {
	command -v java >/dev/null || die "java not found (Java 17+ is needed for Kafka $KAFKA_VERSION)"
	[ -s "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Kafka jars missing in $KAFKA_LIBS (run scripts/install-kafka.sh)"
	local d
	d=$(svc_dir kafka)
	if [ ! -f "$d/data/meta.properties" ]; then
		# A cluster id is 16 random bytes, base64url without padding.
		local id
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		log "formatting Kafka storage in $d/data (cluster $id)"
		kafka_tool kafka.tools.StorageTool format --ignore-formatted -t "$id" -c "$d/server.properties" \
			>>"$d/log/format.log" 2>&1 || {
			tail -n 20 "$d/log/format.log" >&2
			die "formatting Kafka storage failed"
		}
	fi
	# Readiness looks for a log line of this start, not an earlier one.
	if [ -f "$d/log/server.log" ]; then mv -f "$d/log/server.log" "$d/log/server.log.prev"; fi
	# The command line names our server.properties, which marks it as ours.
	launch kafka "$d/log/stdout.log" "${kafka_jvm[@]}" "-Dlog4j.configuration=file:$d/log4j.properties" \
		kafka.Kafka "$d/server.properties"
	kafka_starting=1
	wait_ready kafka "$(main_log kafka)"
	kafka_starting=
	log "kafka ready on 127.0.0.1:$KAFKA_PORT (pid $(recorded_pid kafka))"
}

# --- commands ---------------------------------------------------------------

config_files() {
	case $1 in
	clickhouse) echo "$(svc_dir clickhouse)/config.xml $(svc_dir clickhouse)/users.xml" ;;
	kafka) echo "$(svc_dir kafka)/server.properties $(svc_dir kafka)/log4j.properties" ;;
	esac
}
config_digest() {
	# shellcheck disable=SC2046
	{ cat $(config_files "$1") 2>/dev/null || true; } | md5sum
}

up_one() {
	local name=$1 pid p before
	mkdir -p "$(svc_dir "$name")"
	pid=$(recorded_pid "$name")
	before=$(config_digest "$name")
	"write_${name}_config"
	if [ -n "$pid" ]; then
		if [ "$before" = "$(config_digest "$name")" ]; then
			wait_ready "$name" "$(main_log "$name")"
			log "$name already up (pid $pid)"
			return 0
		fi
		# Started by an older version of this script: its config is stale.
		log "$name config changed; restarting (pid $pid)"
		stop_pid "$pid" "$name"
		rm -f "$(pid_file "$name")"
	fi
	for p in $(strays "$name"); do
		log "stopping $name from an earlier run that lost its PID file (pid $p)"
		stop_pid "$p" "$name"
	done
	check_ports "$name"
	"start_$name"
}

down_one() {
	local name=$1 pid p stopped=
	pid=$(recorded_pid "$name")
	for p in $pid $(strays "$name"); do
		log "stopping $name (pid $p)"
		stop_pid "$p" "$name"
		stopped=1
	done
	rm -f "$(pid_file "$name")"
	[ -n "$stopped" ] || log "$name not running"
}

status_one() {
	local name=$1 pid
	pid=$(recorded_pid "$name")
	if [ -z "$pid" ]; then
		echo "$name: down"
		return 1
	fi
	if "ready_$name"; then
		echo "$name: up (pid $pid, ports $(ports "$name" | tr ' ' ','), dir $(svc_dir "$name"))"
	else
		echo "$name: starting or unhealthy (pid $pid, ports $(ports "$name" | tr ' ' ','))"
		return 1
	fi
}

print_env() {
	[ -n "$(recorded_pid clickhouse)" ] && echo "export PATCHGRID_TEST_CLICKHOUSE=127.0.0.1:$CH_TCP_PORT"
	[ -n "$(recorded_pid kafka)" ] && echo "export PATCHGRID_TEST_KAFKA=127.0.0.1:$KAFKA_PORT"
	[ -e "$CHDB_LIB" ] && echo "export PATCHGRID_CHDB_LIB=$CHDB_LIB"
	return 0
}

usage() {
	sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

cmd=${1:-}
which=${2:-all}
case $which in
all) names=(clickhouse kafka) ;;
clickhouse | kafka) names=("$which") ;;
*) usage ;;
esac

mkdir -p "$PATCHGRID_RUN_DIR"
# One services.sh at a time; the servers must not inherit the lock (fd 9 is
# closed in launch), or it would be held for as long as they run.
exec 9>"$PATCHGRID_RUN_DIR/.lock"
flock 9

case $cmd in
up)
	for n in "${names[@]}"; do up_one "$n"; done
	print_env
	;;
down)
	for n in "${names[@]}"; do down_one "$n"; done
	;;
status)
	rc=0
	for n in "${names[@]}"; do status_one "$n" || rc=1; done
	exit $rc
	;;
env)
	print_env
	;;
clean)
	for n in "${names[@]}"; do
		down_one "$n"
		rm -rf "$(svc_dir "$n")"
		log "$n data removed"
	done
	;;
*) usage ;;
esac
