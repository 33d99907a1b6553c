#!/usr/bin/env bash
# install-kafka.sh: the jars of Apache Kafka (broker, controller, tools) from
# Maven Central into $PATCHGRID_CACHE/kafka-<version>/libs, resolved by Maven
# from scripts/kafka/pom.xml. Does nothing when they are already there.
# Prints the libs directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

# Jars that must be there for `services.sh` to work; the rest are their
# transitive dependencies, which Maven brings along.
required=(
	"kafka_2.13-$KAFKA_VERSION.jar"
	"kafka-clients-$KAFKA_VERSION.jar"
	"kafka-server-$KAFKA_VERSION.jar"
	"kafka-raft-$KAFKA_VERSION.jar"
	"kafka-metadata-$KAFKA_VERSION.jar"
	"kafka-storage-$KAFKA_VERSION.jar"
	"kafka-tools-$KAFKA_VERSION.jar"
	slf4j-reload4j-1.7.36.jar
)

complete() {
	local j
	for j in "${required[@]}"; do
		[ -s "$1/$j" ] || return 1
	done
}

if complete "$KAFKA_LIBS"; then
	log "Kafka $KAFKA_VERSION present: $KAFKA_LIBS"
	echo "$KAFKA_LIBS"
	exit 0
fi

command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
command -v java >/dev/null || die "Java 17+ is needed to run Kafka $KAFKA_VERSION"
mkdir -p "$KAFKA_HOME"
tmp=$(mktemp -d "$KAFKA_HOME/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Maven runs in a scratch copy of the pom so that nothing (target/) is
# written into the repo.
cp "$here/kafka/pom.xml" "$tmp/pom.xml"
log "resolving Kafka $KAFKA_VERSION jars from Maven Central"
if ! (cd "$tmp" && mvn -B -Dstyle.color=never dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1); then
	tail -n 40 "$tmp/mvn.log" >&2
	die "mvn dependency:copy-dependencies failed"
fi
complete "$tmp/libs" || die "Maven finished but jars are missing from $tmp/libs (need: ${required[*]})"

# Swap in whole, so a half-copied libs/ never passes the check above.
rm -rf "$KAFKA_LIBS"
mv "$tmp/libs" "$KAFKA_LIBS"
log "Kafka $KAFKA_VERSION installed: $KAFKA_LIBS ($(ls "$KAFKA_LIBS" | wc -l) jars)"
echo "$KAFKA_LIBS"
