#!/usr/bin/env bash
# A private RabbitMQ cluster on loopback, for broker failover and TLS tests (development only).
#
#   tools/dev/rabbit-cluster.sh start [NODES]   # NODES (default 3) clustered nodes; prints their URLs
#   tools/dev/rabbit-cluster.sh kill I          # SIGKILL node I's whole process group (a crash)
#   tools/dev/rabbit-cluster.sh stop            # stops every node's process group, removes the state
#   tools/dev/rabbit-cluster.sh status
#   tools/dev/rabbit-cluster.sh certs           # (re)makes the test CA, server and client certificates
#
# Node I listens for AMQP on 127.0.0.1:$((BASE + I)) and for AMQP over TLS on
# 127.0.0.1:$((BASE + 10 + I)) (server certificate from the test CA; a client certificate is
# accepted, not required); Erlang distribution on $((BASE + 100 + I)). The shared epmd on 4369 is
# used as is. Every node is started in its own session (setsid), so its PID is its process group:
# stop and kill act on the group and nothing else. State (data, logs, certificates, PIDs) lives in
# $BERTH_RABBIT_CLUSTER_DIR (default /tmp/berth-rabbit-cluster). Every wait is bounded.
set -euo pipefail

BASE=${BERTH_RABBIT_BASE_PORT:-46672}
DIR=${BERTH_RABBIT_CLUSTER_DIR:-/tmp/berth-rabbit-cluster}
PREFIX=${BERTH_RABBIT_NODE_PREFIX:-berth-ha}
WAIT=${BERTH_RABBIT_WAIT_SECONDS:-90}
RMQ=/usr/lib/rabbitmq/bin

node_name() { echo "${PREFIX}-$1@localhost"; }
ctl() { # ctl I args...: rabbitmqctl against node I, as the rabbitmq user (its Erlang cookie)
  local i=$1
  shift
  timeout 60 runuser -u rabbitmq -- "$RMQ/rabbitmqctl" -n "$(node_name "$i")" -q "$@"
}

certs() {
  local c="$DIR/tls"
  mkdir -p "$c"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=berth test CA" \
    -keyout "$c/ca.key" -out "$c/ca.pem" 2>/dev/null
  local who
  for who in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$([ "$who" = server ] && echo localhost || echo berth-client)" \
      -keyout "$c/$who.key" -out "$c/$who.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' \
      "$([ "$who" = server ] && echo serverAuth || echo clientAuth)" >"$c/$who.ext"
    openssl x509 -req -in "$c/$who.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial -days 30 \
      -extfile "$c/$who.ext" -out "$c/$who.pem" 2>/dev/null
  done
  # A certificate from another CA, which the nodes must refuse.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stranger" \
    -keyout "$c/stranger.key" -out "$c/stranger.pem" 2>/dev/null
  chmod 0755 "$c"
  chmod 0644 "$c"/*
}

start_node() {
  local i=$1 d="$DIR/node$i"
  mkdir -p "$d"
  cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$((BASE + i))
listeners.ssl.default = 127.0.0.1:$((BASE + 10 + i))
ssl_options.cacertfile = $DIR/tls/ca.pem
ssl_options.certfile = $DIR/tls/server.pem
ssl_options.keyfile = $DIR/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
loopback_users.guest = true
EOF
  echo '[].' >"$d/enabled_plugins"
  chown -R rabbitmq: "$d"
  setsid env \
    RABBITMQ_NODENAME="$(node_name "$i")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$((BASE + i)) \
    RABBITMQ_DIST_PORT=$((BASE + 100 + i)) \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    runuser -u rabbitmq -- "$RMQ/rabbitmq-server" >"$d/stdout.log" 2>&1 </dev/null &
  echo $! >"$d/pid"
}

await_node() {
  local i=$1 deadline=$((SECONDS + WAIT))
  until ctl "$i" await_startup --timeout 5 >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$DIR/node$i/pid")" 2>/dev/null; then
      echo "node $i exited during start-up; see $DIR/node$i/stdout.log and $DIR/node$i/log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "node $i not up within ${WAIT}s" >&2
      return 1
    fi
    sleep 1
  done
}

stop_group() { # stop_group PID SIGNAL: the node's process group, then a bounded wait for it to end
  local pid=$1 sig=$2 deadline=$((SECONDS + 20))
  kill "-$sig" -- "-$pid" 2>/dev/null || return 0
  while kill -0 -- "-$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 1
      return 0
    fi
    sleep 0.2
  done
}

cmd_start() {
  local n=${1:-3}
  if compgen -G "$DIR/node*/pid" >/dev/null; then
    echo "a cluster is already recorded under $DIR: run stop first" >&2
    return 1
  fi
  mkdir -p "$DIR"
  # The nodes run as the rabbitmq user, which must reach its directories (mktemp makes 0700 ones).
  chmod 0755 "$DIR"
  [ -f "$DIR/tls/ca.pem" ] || certs
  local i
  for ((i = 0; i < n; i++)); do start_node "$i"; done
  for ((i = 0; i < n; i++)); do await_node "$i"; done
  for ((i = 1; i < n; i++)); do
    ctl "$i" stop_app
    ctl "$i" join_cluster "$(node_name 0)"
    ctl "$i" start_app
  done
  for ((i = 0; i < n; i++)); do echo "node $i $(node_name "$i") amqp://guest:guest@127.0.0.1:$((BASE + i))/ amqps://127.0.0.1:$((BASE + 10 + i))/ pid $(cat "$DIR/node$i/pid")"; done
}

cmd_kill() {
  local i=$1
  [ -f "$DIR/node$i/pid" ] || {
    echo "no node $i recorded under $DIR" >&2
    return 1
  }
  stop_group "$(cat "$DIR/node$i/pid")" KILL
  rm -f "$DIR/node$i/pid"
}

cmd_stop() {
  local f
  for f in "$DIR"/node*/pid; do
    [ -f "$f" ] || continue
    stop_group "$(cat "$f")" TERM
    rm -f "$f"
  done
  rm -rf "$DIR"
}

cmd_status() {
  local f i
  for f in "$DIR"/node*/pid; do
    [ -f "$f" ] || continue
    i=${f%/pid}
    i=${i##*node}
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "node $i up (pid $(cat "$f"))"; else echo "node $i down"; fi
  done
}

case "${1:-}" in
start) cmd_start "${2:-3}" ;;
kill) cmd_kill "${2:?node index}" ;;
stop) cmd_stop ;;
status) cmd_status ;;
certs) certs ;;
*)
  echo "usage: $0 start [NODES] | kill I | stop | status | certs" >&2
  exit 2
  ;;
esac
