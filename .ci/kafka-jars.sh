#!/usr/bin/env bash
# Fetches the Apache Kafka broker the real-Kafka tests run (internal/testenv)
# from Maven Central: the jars of internal/testenv/kafka/pom.xml and their
# runtime dependencies, into KAFKA_JARS (default
# ${XDG_CACHE_HOME:-~/.cache}/tapwars/kafka-VERSION). Idempotent: a complete
# directory is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
pom=internal/testenv/kafka/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
dir=${KAFKA_JARS:-${XDG_CACHE_HOME:-$HOME/.cache}/tapwars/kafka-$version}
# The marker names the pom's content, so a changed pom fetches again.
stamp=$(sha256sum "$pom" | cut -c1-16)
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ]; then
  exit 0
fi
command -v java >/dev/null || { echo "kafka-jars: java (17 or later) is needed: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
command -v mvn >/dev/null || { echo "kafka-jars: mvn is needed: apt-get install maven" >&2; exit 1; }
echo "installing: Apache Kafka $version jars from Maven Central into $dir"
tmp="$dir.tmp.$$"
rm -rf "$tmp"
# Maven's output is shown only when it fails (with -q it is otherwise bare
# terminal escapes).
if ! out=$(mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1); then
  echo "$out" >&2
  echo "kafka-jars: mvn could not fetch the jars (above)" >&2
  rm -rf "$tmp"
  exit 1
fi
rm -rf "$dir"
mv "$tmp" "$dir"
echo "$stamp" >"$dir/.complete"
