#!/usr/bin/env bash
# Start and stop a real single-node Apache Kafka broker (KRaft) from the jars
# that Maven resolved into kafka/lib. Used by `make kafka-up` / `make kafka-down`.
#
#   scripts/kafka.sh up      start in the background, wait until it answers
#   scripts/kafka.sh down    stop the broker this script started (pid file)
#   scripts/kafka.sh status  say whether a broker answers on KAFKA_PORT
#
# Environment: KAFKA_PORT (9092), KAFKA_DATA_DIR (./.kafka-data),
# KAFKA_HEAP (-Xmx512m -Xms256m), KAFKA_START_TIMEOUT (90 s), PYTHON (.venv/bin/python).
# A secured listener as well (used by the security tests):
#   KAFKA_SASL_SSL_PORT    adds SASL_SSL://127.0.0.1:PORT with SCRAM-SHA-512
#   KAFKA_SSL_KEYSTORE_PEM PEM file: the listener's private key (PKCS#8) and certificate chain
#   KAFKA_SCRAM_USERS      "user:password[,user:password]" created when the storage is formatted
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
data_dir="${KAFKA_DATA_DIR:-$root/.kafka-data}"
mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
heap="${KAFKA_HEAP:--Xmx512m -Xms256m}"
start_timeout="${KAFKA_START_TIMEOUT:-90}"
python="${PYTHON:-$root/.venv/bin/python}"
pid_file="$data_dir/kafka.pid"
log_file="$data_dir/server.log"
props="$data_dir/server.properties"
classpath="$root/kafka/lib/*"

answers() {  # does a broker answer Kafka requests on $port within $1 seconds?
  "$python" "$root/scripts/kafka_ready.py" --bootstrap "127.0.0.1:$port" --timeout "$1" >/dev/null 2>&1
}

our_pid() {  # pid from the pid file if that process is still alive, else nothing
  [ -f "$pid_file" ] || return 0
  local pid
  pid="$(cat "$pid_file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

write_config() {
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [ -n "${KAFKA_SASL_SSL_PORT:-}" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    advertised="$advertised,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$data_dir/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
PROPS
  if [ -n "${KAFKA_SASL_SSL_PORT:-}" ]; then
    cat >>"$props" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=${KAFKA_SSL_KEYSTORE_PEM:?KAFKA_SSL_KEYSTORE_PEM is needed with KAFKA_SASL_SSL_PORT}
ssl.client.auth=none
PROPS
  fi
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ] && [ -f "$KAFKA_EXTRA_PROPERTIES" ]; then
    cat "$KAFKA_EXTRA_PROPERTIES" >>"$props"
  fi
  cat >"$data_dir/log4j2.properties" <<LOG
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log_file
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

up() {
  if [ ! -d "$root/kafka/lib" ] || ! ls "$root/kafka/lib"/kafka_2.13-*.jar >/dev/null 2>&1; then
    echo "kafka: jars missing in kafka/lib; run 'make kafka-jars' first" >&2
    exit 1
  fi
  local pid
  pid="$(our_pid)"
  if [ -n "$pid" ] && answers 5; then
    echo "kafka: already running on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  if [ -z "$pid" ] && answers 2; then
    echo "kafka: a broker already answers on 127.0.0.1:$port; leaving it alone"
    return 0
  fi
  if [ -z "$pid" ]; then
    write_config
    if [ ! -f "$data_dir/cluster.id" ]; then
      "$python" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$data_dir/cluster.id"
    fi
    local scram=()
    if [ -n "${KAFKA_SCRAM_USERS:-}" ]; then
      local pair
      IFS=',' read -ra pairs <<<"$KAFKA_SCRAM_USERS"
      for pair in "${pairs[@]}"; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=${pair%%:*},password=${pair#*:}]")
      done
    fi
    java -Xmx256m -cp "$classpath" -Dlog4j2.configurationFile="$data_dir/log4j2.properties" \
      kafka.tools.StorageTool format --cluster-id="$(cat "$data_dir/cluster.id")" -c "$props" --ignore-formatted "${scram[@]}" \
      >"$data_dir/format.log" 2>&1 || { echo "kafka: storage format failed:" >&2; tail -20 "$data_dir/format.log" >&2; exit 1; }
    # setsid: the broker gets its own process group, so Ctrl-C in a terminal
    # that ran `make run` does not hit it before `kafka-down` stops it cleanly.
    setsid java $heap -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$data_dir/log4j2.properties" \
      -cp "$classpath" kafka.Kafka "$props" >"$data_dir/stdout.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"
    echo "kafka: starting on 127.0.0.1:$port (pid $pid, data in $data_dir)"
  fi
  local deadline=$((SECONDS + start_timeout))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka: the broker exited during start-up; last lines of its logs:" >&2
      tail -25 "$data_dir/stdout.log" "$log_file" 2>/dev/null >&2 || true
      rm -f "$pid_file"
      exit 1
    fi
    if answers 3; then
      echo "kafka: ready on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.5
  done
  echo "kafka: not answering after ${start_timeout}s; last lines of its logs:" >&2
  tail -25 "$data_dir/stdout.log" "$log_file" 2>/dev/null >&2 || true
  exit 1
}

down() {
  local pid
  pid="$(our_pid)"
  if [ -z "$pid" ]; then
    echo "kafka: no broker started from $data_dir is running"
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "kafka: pid $pid still running after 60s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  echo "kafka: stopped (pid $pid)"
}

status() {
  if answers 3; then echo "kafka: answering on 127.0.0.1:$port"; else echo "kafka: nothing answers on 127.0.0.1:$port"; exit 1; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
