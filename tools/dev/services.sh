#!/usr/bin/env bash
# Installs (from Debian's packages) and starts, on loopback, the system services Berth runs on:
# RabbitMQ, dockerd, a Docker registry and PostgreSQL. Idempotent; needs root. Usage:
#   tools/dev/services.sh install|start|stop|status|env
# Environment: BERTH_DEV_DIR (state, default /var/lib/berth-dev), BERTH_REGISTRY_PORT (5000),
#              BERTH_EXTRA_PACKAGES (more Debian packages to install).
set -euo pipefail

DEV_DIR=${BERTH_DEV_DIR:-/var/lib/berth-dev}
REGISTRY_PORT=${BERTH_REGISTRY_PORT:-5000}
PACKAGES=(rabbitmq-server docker.io docker-registry busybox-static iptables iproute2 util-linux curl openssl python3-oslo.messaging
          python3-glanceclient python3-nova postgresql zstd skopeo
          ${BERTH_EXTRA_PACKAGES:-})
DOCKER=/usr/bin/docker

log() { printf '[services] %s\n' "$*" >&2; }

wait_for() { # wait_for NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then log "$name did not come up within ${secs}s"; return 1; fi
    sleep 0.5
  done
  log "$name is up"
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then log "packages present"; return; fi
  log "installing: ${missing[*]}"
  apt-get update -qq
  # Services must not be started by the packages' scripts: this script starts them on loopback.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

start_rabbitmq() {
  if rabbitmqctl -q status >/dev/null 2>&1; then log "rabbitmq already running"; return; fi
  mkdir -p /etc/rabbitmq
  # Loopback only.
  printf 'listeners.tcp.default = 127.0.0.1:5672\nloopback_users.guest = true\n' > /etc/rabbitmq/rabbitmq.conf
  [ -f /etc/rabbitmq/enabled_plugins ] || echo '[].' > /etc/rabbitmq/enabled_plugins
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for rabbitmq 90 rabbitmqctl -q await_startup
}

start_dockerd() {
  if $DOCKER info >/dev/null 2>&1; then log "dockerd already running"; return; fi
  mkdir -p "$DEV_DIR"
  nohup dockerd --host unix:///var/run/docker.sock >"$DEV_DIR/dockerd.log" 2>&1 &
  echo $! > "$DEV_DIR/dockerd.pid"
  wait_for dockerd 60 $DOCKER info
}

start_registry() {
  if curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; then log "registry already running"; return; fi
  mkdir -p "$DEV_DIR/registry"
  cat > "$DEV_DIR/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $DEV_DIR/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
YML
  nohup docker-registry serve "$DEV_DIR/registry.yml" >"$DEV_DIR/registry.log" 2>&1 &
  echo $! > "$DEV_DIR/registry.pid"
  wait_for registry 30 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
}

PG_VERSION=15
start_postgres() {
  # Debian's cluster, loopback only; a berth role and a berth_test database for the tests.
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$PG_VERSION main"; then
    pg_createcluster "$PG_VERSION" main >/dev/null
  fi
  if ! pg_lsclusters -h | grep -q "^$PG_VERSION main .* online"; then
    pg_ctlcluster "$PG_VERSION" main start -o "-c listen_addresses=127.0.0.1"
  fi
  wait_for postgres 30 su postgres -c "psql -qtAc 'select 1'"
  su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='berth'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"create role berth login password 'berth' createdb\"" >/dev/null
  su postgres -c "psql -qtAc \"select 1 from pg_database where datname='berth_test'\"" | grep -q 1 \
    || su postgres -c "createdb -O berth berth_test" >/dev/null
}

stop_pidfile() {
  local f="$DEV_DIR/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$f"
}

status() {
  rabbitmqctl -q status >/dev/null 2>&1 && echo "rabbitmq: up (amqp://127.0.0.1:5672)" || echo "rabbitmq: down"
  $DOCKER info >/dev/null 2>&1 && echo "dockerd:  up (unix:///var/run/docker.sock)" || echo "dockerd:  down"
  curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1 \
    && echo "registry: up (http://127.0.0.1:$REGISTRY_PORT)" || echo "registry: down"
  pg_lsclusters -h 2>/dev/null | grep -q "^$PG_VERSION main .* online" \
    && echo "postgres: up (postgres://127.0.0.1:5432)" || echo "postgres: down"
}

case "${1:-}" in
  install) install_packages ;;
  start) install_packages; start_rabbitmq; start_dockerd; start_registry; start_postgres ;;
  stop) stop_pidfile registry; stop_pidfile dockerd; rabbitmqctl -q stop >/dev/null 2>&1 || true
        pg_ctlcluster "$PG_VERSION" main stop >/dev/null 2>&1 || true ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
