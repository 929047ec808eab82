#!/usr/bin/env bash
# A real single-node OpenSearch with ML-Commons and neural-search, assembled offline from Maven Central.
#
#   opensearch/local.sh start    assemble on first use (cached), start on 127.0.0.1:9200, wait for green
#   opensearch/local.sh stop     stop the node this script started (pid file), nothing else
#   opensearch/local.sh status   cluster health, or "not running"
#   opensearch/local.sh logs     the last lines of the node log (LINES=100)
#   opensearch/local.sh pid      the pid of the node this script started on the port, or exit 3
#
# OpenSearch refuses to run as root; started by root, the node runs as the system user
# KO_SPARSE_OPENSEARCH_USER (created if missing) and the cache moves out of /root.
# Nodes on different ports share the assembled home and keep their own data (instances/VERSION-PORT).
#
# Environment: KO_SPARSE_OPENSEARCH_CACHE (default ~/.cache/ko-sparse/opensearch, for root
# /var/cache/ko-sparse/opensearch), KO_SPARSE_OPENSEARCH_PORT (9200), KO_SPARSE_OPENSEARCH_HEAP (2g),
# KO_SPARSE_OPENSEARCH_USER (ko-sparse-opensearch), OPENSEARCH_JAVA_HOME (else the first Java >= 21
# in JAVA_HOME or JAVA_SEARCH_DIRS, default /usr/lib/jvm/*), MAVEN_REPO (https://repo1.maven.org/maven2),
# START_TIMEOUT (240 s), KO_SPARSE_OPENSEARCH_SETTINGS (extra node settings for this start, space-separated
# KEY=VALUE, e.g. "thread_pool.write.queue_size=1": static settings the tests need, such as a tiny bulk queue).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

MAVEN_REPO=${MAVEN_REPO:-https://repo1.maven.org/maven2}
if [ "$(id -u)" = 0 ]; then
  CACHE=${KO_SPARSE_OPENSEARCH_CACHE:-/var/cache/ko-sparse/opensearch}
else
  CACHE=${KO_SPARSE_OPENSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ko-sparse/opensearch}
fi
NODE_USER=${KO_SPARSE_OPENSEARCH_USER:-ko-sparse-opensearch}
PORT=${KO_SPARSE_OPENSEARCH_PORT:-9200}
HEAP=${KO_SPARSE_OPENSEARCH_HEAP:-2g}
START_TIMEOUT=${START_TIMEOUT:-240}

NODE_HOME=$CACHE/opensearch-$OPENSEARCH_VERSION
DOWNLOADS=$CACHE/downloads
LIBTORCH=$CACHE/libtorch-$PYTORCH_VERSION-cpu
# one assembled node home, and one data/run folder per port: several nodes can share the cache
INSTANCE=$CACHE/instances/$OPENSEARCH_VERSION-$PORT
DATA=$INSTANCE/data
RUN=$INSTANCE/run
PID_FILE=$RUN/opensearch.pid
LOG_DIR=$RUN/logs
LOG_FILE=$LOG_DIR/ko-sparse-dev.log
URL=http://127.0.0.1:$PORT

say() { printf '[opensearch] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ------------------------------------------------------------------------------------------- java
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

find_java() {
  local candidates=() home
  [ -n "${OPENSEARCH_JAVA_HOME:-}" ] && candidates+=("$OPENSEARCH_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  for home in ${JAVA_SEARCH_DIRS:-/usr/lib/jvm/*}; do [ -x "$home/bin/java" ] && candidates+=("$home"); done
  for home in "${candidates[@]}"; do
    if [ -x "$home/bin/java" ] && [ "$(java_major "$home")" -ge "$JAVA_MIN_VERSION" ] 2>/dev/null; then
      echo "$home"; return 0
    fi
  done
  die "OpenSearch $OPENSEARCH_VERSION needs Java $JAVA_MIN_VERSION or newer; none found (looked at" \
      "OPENSEARCH_JAVA_HOME, JAVA_HOME and ${JAVA_SEARCH_DIRS:-/usr/lib/jvm/*})." \
      "Install a JDK $JAVA_MIN_VERSION+ and set OPENSEARCH_JAVA_HOME."
}

# -------------------------------------------------------------------------------------- artifacts
# fetch GROUP ARTIFACT VERSION EXT [CLASSIFIER] -> prints the local path; checks Maven's sha1
fetch() {
  local group=$1 artifact=$2 version=$3 ext=$4 classifier=${5:-}
  local file="$artifact-$version${classifier:+-$classifier}.$ext"
  local url="$MAVEN_REPO/${group//.//}/$artifact/$version/$file"
  local target="$DOWNLOADS/$file"
  if [ ! -s "$target" ]; then
    mkdir -p "$DOWNLOADS"
    say "downloading $group:$artifact:$version${classifier:+:$classifier}:$ext"
    local code
    code=$(curl -sSL --retry 3 -w '%{http_code}' -o "$target.part" "$url") || code=${code:-000}
    if [ "$code" != 200 ]; then
      rm -f "$target.part"
      die "artifact $group:$artifact:$version${classifier:+:$classifier}:$ext does not resolve (HTTP $code from $url)"
    fi
    local expected actual
    expected=$(curl -sSL --retry 3 "$url.sha1" | cut -c1-40 || true)
    actual=$(sha1sum "$target.part" | cut -c1-40)
    if [ -n "$expected" ] && [ "$expected" != "$actual" ]; then
      rm -f "$target.part"
      die "checksum mismatch for $url (expected $expected, got $actual)"
    fi
    mv "$target.part" "$target"
  fi
  echo "$target"
}

assemble() {
  [ -f "$NODE_HOME/.ko-sparse-assembled" ] && return 0
  local java=$1 work plugin zip
  say "assembling OpenSearch $OPENSEARCH_VERSION in $NODE_HOME (first start only)"
  rm -rf "$CACHE"/assemble.* "$CACHE"/libtorch.*  # left over by an interrupted assembly
  work=$(mktemp -d "$CACHE/assemble.XXXXXX")
  zip=$(fetch org.opensearch.distribution.integ-test-zip opensearch "$OPENSEARCH_VERSION" zip)
  unzip -q "$zip" -d "$work"
  local home="$work/opensearch-$OPENSEARCH_VERSION"
  # install order follows extendedPlugins: ml extends job-scheduler, neural-search extends k-NN
  for plugin in opensearch-job-scheduler opensearch-ml-plugin opensearch-knn neural-search; do
    zip=$(fetch org.opensearch.plugin "$plugin" "$OPENSEARCH_PLUGIN_VERSION" zip)
    say "installing plugin $plugin"
    OPENSEARCH_JAVA_HOME=$java "$home/bin/opensearch-plugin" install --batch "file://$zip" >/dev/null
  done
  cat "$HERE/opensearch.yml" >> "$home/config/opensearch.yml"
  unpack_libtorch
  rm -rf "$NODE_HOME"
  mv "$home" "$NODE_HOME"
  rm -rf "$work"
  touch "$NODE_HOME/.ko-sparse-assembled"
}

# libtorch for ML-Commons' DJL engine: DJL would download it from publish.djl.ai on first deploy,
# which fails offline, so it is taken from Maven Central and pointed to with PYTORCH_LIBRARY_PATH.
unpack_libtorch() {
  [ -f "$LIBTORCH/libtorch.so" ] && return 0
  local jar work
  jar=$(fetch ai.djl.pytorch pytorch-native-cpu "$PYTORCH_VERSION" jar linux-x86_64)
  work=$(mktemp -d "$CACHE/libtorch.XXXXXX")
  unzip -q "$jar" "pytorch/cpu/linux-x86_64/*" -d "$work"
  rm -rf "$LIBTORCH"
  mv "$work/pytorch/cpu/linux-x86_64" "$LIBTORCH"
  rm -rf "$work"
}

# DJL looks for its JNI library in <DJL cache>/pytorch/<version>-<flavor>-<os>/<djl version>-libdjl_torch.so;
# ML-Commons puts the DJL cache in <path.data>/ml_cache.
seed_jni() {
  local dir="$DATA/ml_cache/pytorch/$PYTORCH_VERSION-cpu-linux-x86_64"
  [ -f "$dir/$DJL_VERSION-libdjl_torch.so" ] && return 0
  local jar
  jar=$(fetch ai.djl.pytorch pytorch-jni "$PYTORCH_JNI_VERSION" jar)
  mkdir -p "$dir"
  unzip -p "$jar" jnilib/linux-x86_64/cpu/libdjl_torch.so > "$dir/$DJL_VERSION-libdjl_torch.so"
}

# ---------------------------------------------------------------------------------------- process
# as root: run the node as NODE_USER, which owns the data and log folders; otherwise as ourselves
as_node_user() {
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  if ! id -u "$NODE_USER" >/dev/null 2>&1; then
    say "creating system user $NODE_USER (OpenSearch refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$NODE_USER" \
      || die "cannot create user $NODE_USER; run as a non-root user or set KO_SPARSE_OPENSEARCH_USER"
  fi
  chown -R "$NODE_USER" "$NODE_HOME" "$INSTANCE"
  runuser -u "$NODE_USER" -- "$@"
}

running_pid() {
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

health() { curl -s --max-time 5 "$URL/_cluster/health?wait_for_status=${1:-green}&timeout=${2:-1s}"; }

log_tail() {
  if [ -f "$LOG_FILE" ]; then
    say "last ${LINES:-60} lines of $LOG_FILE:"
    tail -n "${LINES:-60}" "$LOG_FILE" >&2
  fi
}

start() {
  if pid=$(running_pid); then
    say "already running (pid $pid) on $URL"
    return 0
  fi
  port_taken && die "port $PORT is already in use by another process; stop it or set KO_SPARSE_OPENSEARCH_PORT"
  command -v curl >/dev/null || die "curl is needed"
  command -v unzip >/dev/null || die "unzip is needed"
  local java
  java=$(find_java)
  mkdir -p "$CACHE" "$RUN" "$LOG_DIR" "$DATA"
  assemble "$java"
  seed_jni
  local extra=() setting
  for setting in ${KO_SPARSE_OPENSEARCH_SETTINGS:-}; do extra+=(-E "$setting"); done
  say "starting OpenSearch $OPENSEARCH_VERSION on $URL (Java $(java_major "$java"), heap $HEAP)" \
      "${KO_SPARSE_OPENSEARCH_SETTINGS:+with $KO_SPARSE_OPENSEARCH_SETTINGS}"
  rm -f "$PID_FILE"
  as_node_user env OPENSEARCH_JAVA_HOME="$java" \
    OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_JAVA_OPTS:-}" \
    PYTORCH_LIBRARY_PATH="$LIBTORCH" PYTORCH_VERSION="$PYTORCH_VERSION" PYTORCH_FLAVOR=cpu \
    "$NODE_HOME/bin/opensearch" -d -p "$PID_FILE" \
      -E "http.port=$PORT" -E "path.data=$DATA" -E "path.logs=$LOG_DIR" "${extra[@]}" >"$RUN/stdout.log" 2>&1 \
    || { cat "$RUN/stdout.log" >&2; log_tail; die "the node did not start"; }
  local waited=0
  until health yellow 1s | grep -q '"status":"\(green\|yellow\)"'; do
    if ! running_pid >/dev/null && [ "$waited" -gt 60 ]; then  # a loaded machine writes the pid file late
      log_tail; die "the node exited during start-up"
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      log_tail; die "the cluster had no active primaries after ${START_TIMEOUT}s"
    fi
    sleep 2; waited=$((waited + 2))
  done
  single_node_template
  local status
  status=$(health green 4s | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' || true)  # within curl's 5 s
  if [ "$status" = green ]; then
    say "green after ${waited}s: $URL (pid $(running_pid))"
  else
    say "up after ${waited}s but $status: indices created with replicas before this start cannot be" \
        "assigned on one node (set their number_of_replicas to 0): $URL (pid $(running_pid))"
  fi
}

# One node cannot hold replicas, and cluster.default_number_of_replicas does not reach indices created
# with explicit settings (seen on 3.6.0): a catch-all template keeps every new index green.
single_node_template() {
  curl -s --max-time 10 -X PUT "$URL/_index_template/ko-sparse-single-node" -H 'Content-Type: application/json' \
    -d '{"index_patterns": ["*"], "priority": 0, "template": {"settings": {"number_of_replicas": 0}}}' >/dev/null \
    || die "could not install the single-node index template"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    say "not running"; rm -f "$PID_FILE"; return 0
  fi
  say "stopping pid $pid"
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; say "stopped"; return 0; }
    sleep 1
  done
  say "pid $pid did not stop in 60s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
}

status() {
  if pid=$(running_pid); then
    say "running (pid $pid) on $URL"
    health yellow 1s; echo
  else
    say "not running"; return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  logs) LINES=${LINES:-100} log_tail ;;
  pid) running_pid || exit 3 ;;
  home) echo "$NODE_HOME" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
