#!/usr/bin/env bash
# Start and stop a real single-node Apache Kafka broker (KRaft) from the jars
# that Maven resolved into kafka/lib. Used by `make kafka-up` / `make kafka-down`.
#
#   scripts/kafka.sh up      start in the background, wait until it answers
#   scripts/kafka.sh down    stop the broker this script started (pid file)
#   scripts/kafka.sh status  say whether a broker answers on KAFKA_PORT
#
# Environment: KAFKA_PORT (9092), KAFKA_DATA_DIR (./.kafka-data),
# KAFKA_HEAP (-Xmx512m -Xms256m; -Xmx320m -Xms128m each in a cluster),
# KAFKA_START_TIMEOUT (90 s), PYTHON (.venv/bin/python).
# A cluster: KAFKA_BROKERS=3 runs brokers 0..2 (each also a KRaft controller)
# on KAFKA_PORT+n (controllers on KAFKA_PORT+3+n), data in
# $KAFKA_DATA_DIR/broker-<n>/, pids in $KAFKA_DATA_DIR/broker-<n>.pid; `up`
# starts those not running (so it also brings back one that was killed),
# `down` stops them all.
# A secured listener as well (used by the security tests):
#   KAFKA_SASL_SSL_PORT    adds SASL_SSL://127.0.0.1:PORT with SCRAM-SHA-512
#   KAFKA_SSL_KEYSTORE_PEM PEM file: the listener's private key (PKCS#8) and certificate chain
#   KAFKA_SCRAM_USERS      "user:password[,user:password]" created when the storage is formatted
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${KAFKA_PORT:-9092}"
brokers="${KAFKA_BROKERS:-1}"
data_dir="${KAFKA_DATA_DIR:-$root/.kafka-data}"
mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
if [ "$brokers" -gt 1 ]; then
  heap="${KAFKA_HEAP:--Xmx320m -Xms128m}"
else
  heap="${KAFKA_HEAP:--Xmx512m -Xms256m}"
fi
start_timeout="${KAFKA_START_TIMEOUT:-90}"
python="${PYTHON:-$root/.venv/bin/python}"
classpath="$root/kafka/lib/*"

# Node n's port, controller port, directory and pid file (one broker: the
# layout of earlier versions, so existing data directories keep working).
node_port() { echo $((port + $1)); }
node_controller_port() {
  if [ "$brokers" -gt 1 ]; then echo $((port + brokers + $1)); else echo "${KAFKA_CONTROLLER_PORT:-$((port + 1))}"; fi
}
node_dir() { if [ "$brokers" -gt 1 ]; then echo "$data_dir/broker-$1"; else echo "$data_dir"; fi; }
node_pid_file() { if [ "$brokers" -gt 1 ]; then echo "$data_dir/broker-$1.pid"; else echo "$data_dir/kafka.pid"; fi; }
nodes() { seq 0 $((brokers - 1)); }

answers() {  # does broker $1 answer Kafka requests within $2 seconds (and see all brokers of the cluster)?
  "$python" "$root/scripts/kafka_ready.py" --bootstrap "127.0.0.1:$(node_port "$1")" --timeout "$2" \
    --brokers "$brokers" >/dev/null 2>&1
}

our_pid() {  # node $1's pid from its pid file if that process is still alive, else nothing
  local pid_file
  pid_file="$(node_pid_file "$1")"
  [ -f "$pid_file" ] || return 0
  local pid
  pid="$(cat "$pid_file")"
  if [ -n "$pid" ] && running "$pid"; then echo "$pid"; fi
}

running() {  # a killed broker may stay a zombie for a while (whoever inherited it reaps it late): not running
  kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

write_config() {  # node $1
  local n="$1" dir node_id voters="" replicas=$((brokers < 3 ? brokers : 3)) in_sync=$((brokers < 2 ? 1 : 2))
  dir="$(node_dir "$n")"
  mkdir -p "$dir"
  local listeners="PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")"
  local advertised="PLAINTEXT://127.0.0.1:$(node_port "$n")"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [ "$brokers" -gt 1 ]; then
    node_id="$n"
    for m in $(nodes); do voters="$voters${voters:+,}$m@127.0.0.1:$(node_controller_port "$m")"; done
  else
    node_id=1
    voters="1@127.0.0.1:$(node_controller_port 0)"
  fi
  if [ -n "${KAFKA_SASL_SSL_PORT:-}" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    advertised="$advertised,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$dir/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$in_sync
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
PROPS
  if [ -n "${KAFKA_SASL_SSL_PORT:-}" ]; then
    cat >>"$dir/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=${KAFKA_SSL_KEYSTORE_PEM:?KAFKA_SSL_KEYSTORE_PEM is needed with KAFKA_SASL_SSL_PORT}
ssl.client.auth=none
PROPS
  fi
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ] && [ -f "$KAFKA_EXTRA_PROPERTIES" ]; then
    cat "$KAFKA_EXTRA_PROPERTIES" >>"$dir/server.properties"
  fi
  cat >"$dir/log4j2.properties" <<LOG
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.ctrl.name = kafka.controller
logger.ctrl.level = WARN
LOG
}

start_node() {  # format node $1's storage if new, start it in the background
  local n="$1" dir pid
  dir="$(node_dir "$n")"
  write_config "$n"
  local scram=()
  if [ -n "${KAFKA_SCRAM_USERS:-}" ]; then
    local pair
    IFS=',' read -ra pairs <<<"$KAFKA_SCRAM_USERS"
    for pair in "${pairs[@]}"; do
      scram+=(--add-scram "SCRAM-SHA-512=[name=${pair%%:*},password=${pair#*:}]")
    done
  fi
  java -Xmx256m -cp "$classpath" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    kafka.tools.StorageTool format --cluster-id="$(cat "$data_dir/cluster.id")" -c "$dir/server.properties" \
    --ignore-formatted "${scram[@]}" >"$dir/format.log" 2>&1 \
    || { echo "kafka: storage format failed:" >&2; tail -20 "$dir/format.log" >&2; exit 1; }
  # setsid: the broker gets its own process group, so Ctrl-C in a terminal
  # that ran `make run` does not hit it before `kafka-down` stops it cleanly.
  setsid java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$classpath" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(node_pid_file "$n")"
  echo "kafka: starting broker $n on 127.0.0.1:$(node_port "$n") (pid $pid, data in $dir)"
}

up() {
  if [ ! -d "$root/kafka/lib" ] || ! ls "$root/kafka/lib"/kafka_2.13-*.jar >/dev/null 2>&1; then
    echo "kafka: jars missing in kafka/lib; run 'make kafka-jars' first" >&2
    exit 1
  fi
  local n pid started=()
  if [ "$brokers" -eq 1 ]; then
    pid="$(our_pid 0)"
    if [ -n "$pid" ] && answers 0 5; then
      echo "kafka: already running on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    if [ -z "$pid" ] && answers 0 2; then
      echo "kafka: a broker already answers on 127.0.0.1:$port; leaving it alone"
      return 0
    fi
  fi
  if [ ! -f "$data_dir/cluster.id" ]; then
    "$python" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$data_dir/cluster.id"
  fi
  for n in $(nodes); do
    if [ -z "$(our_pid "$n")" ]; then start_node "$n"; started+=("$n"); fi
  done
  local deadline=$((SECONDS + start_timeout))
  for n in $(nodes); do
    while ! answers "$n" 3; do
      if [ -z "$(our_pid "$n")" ]; then
        echo "kafka: broker $n exited during start-up; last lines of its logs:" >&2
        tail -25 "$(node_dir "$n")/stdout.log" "$(node_dir "$n")/server.log" 2>/dev/null >&2 || true
        rm -f "$(node_pid_file "$n")"
        exit 1
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "kafka: broker $n not answering after ${start_timeout}s; last lines of its logs:" >&2
        tail -25 "$(node_dir "$n")/stdout.log" "$(node_dir "$n")/server.log" 2>/dev/null >&2 || true
        exit 1
      fi
      sleep 0.5
    done
  done
  if [ "$brokers" -eq 1 ]; then
    echo "kafka: ready on 127.0.0.1:$port"
  else
    echo "kafka: $brokers brokers ready on 127.0.0.1:$port-$((port + brokers - 1)) (started: ${started[*]:-none})"
  fi
}

down() {  # every broker started from this data directory, whatever KAFKA_BROKERS says now
  local pid_file pid pids=()
  for pid_file in "$data_dir/kafka.pid" "$data_dir"/broker-*.pid; do
    [ -f "$pid_file" ] || continue
    pid="$(cat "$pid_file")"
    if [ -n "$pid" ] && running "$pid"; then
      kill -TERM "$pid"  # all at once: a broker waiting for a lost quorum must not hold up the others
      pids+=("$pid_file:$pid")
    else
      rm -f "$pid_file"
    fi
  done
  if [ ${#pids[@]} -eq 0 ]; then
    echo "kafka: no broker started from $data_dir is running"
    return 0
  fi
  local deadline=$((SECONDS + 60)) entry
  for entry in "${pids[@]}"; do
    pid_file="${entry%:*}" pid="${entry##*:}"
    while running "$pid"; do
      if [ $SECONDS -ge $deadline ]; then
        echo "kafka: pid $pid still running after 60s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    rm -f "$pid_file"
    echo "kafka: stopped $(basename "$pid_file" .pid) (pid $pid)"
  done
}

status() {
  local n bad=0
  for n in $(nodes); do
    if answers "$n" 3; then echo "kafka: answering on 127.0.0.1:$(node_port "$n")"
    else echo "kafka: nothing answers on 127.0.0.1:$(node_port "$n")"; bad=1; fi
  done
  exit $bad
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
