#!/usr/bin/env bash
# A test OpenStack control plane (Zed, from Debian 12's packages) on loopback, for the nova-mode
# integration tests: MariaDB, a private RabbitMQ node, Keystone, Placement, Glance, nova-api (with
# the metadata API), nova-conductor, nova-scheduler, nova-serialproxy and Neutron (server, linuxbridge, DHCP,
# metadata and L3 agents, an external network `public`; tools/dev/cloud-neutron.sh), or a neutron
# stub (nova-control-plane.md §3).
# Needs root. Usage:
#   tools/dev/cloud.sh install                  Debian packages (idempotent)
#   tools/dev/cloud.sh start                    bring up; a no-op when already up
#   tools/dev/cloud.sh stop                     stop everything started here, by PID
#   tools/dev/cloud.sh status | env             each part (exit 1 if one is down) | admin OS_* exports
#   tools/dev/cloud.sh reset                    stop and delete the state (the next start is fresh)
#   tools/dev/cloud.sh reference-compute start|stop HOST
#                                               a stock nova-compute with the no-op fake driver;
#                                               stop also deletes its service record
# State: BERTH_CLOUD_STATE (default /var/lib/berth-cp). A start after a stop reuses it (databases,
# users, catalog, flavors); a state left by a start that did not finish is deleted and rebuilt.
# Credentials and URLs for tests: $STATE/cloud.env (mode 600), meant to be sourced.
# A second, independent cloud on the same host: another BERTH_CLOUD_STATE with
# BERTH_CLOUD_PORT_OFFSET=N (every port below + N; its RabbitMQ node is novacpN@localhost, its
# provider link, VNI range and Neutron agent host its own). Give the same two variables to every
# later command (stop, status, env, ...) of that cloud; tests find it through BERTH_CLOUD_STATE.
# BERTH_CLOUD_NEUTRON=stub runs tools/dev/neutron-stub.ts instead of Neutron (servers with
# --nic none only).
# Longer than a usual file: the service configs are inline, and start, stop and the reference
# compute share one set of PID bookkeeping.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${BERTH_CLOUD_STATE:-/var/lib/berth-cp}
PACKAGES=(rabbitmq-server mariadb-server keystone python3-openstackclient python3-osc-placement
          placement-api nova-api nova-conductor nova-scheduler glance-api python3-nova)
NEUTRON_PACKAGES=(neutron-server neutron-linuxbridge-agent neutron-dhcp-agent neutron-metadata-agent neutron-l3-agent dnsmasq-base
                  haproxy ebtables ipset conntrack bridge-utils iproute2 sudo curl)
PORT_OFFSET=${BERTH_CLOUD_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]{1,4}$ ]] && (( PORT_OFFSET <= 1000 && PORT_OFFSET % 10 == 0 )) \
  || { echo "[cloud] BERTH_CLOUD_PORT_OFFSET must be a multiple of 10 from 0 to 1000 (the ports of two clouds then never meet)" >&2; exit 2; }
RMQ_PORT=$((5699 + PORT_OFFSET)) RMQ_DIST_PORT=$((25699 + PORT_OFFSET)) DB_PORT=$((23306 + PORT_OFFSET))
KEYSTONE_PORT=$((25000 + PORT_OFFSET)) PLACEMENT_PORT=$((28778 + PORT_OFFSET)) GLANCE_PORT=$((29292 + PORT_OFFSET))
NOVA_PORT=$((28774 + PORT_OFFSET)) NOVA_METADATA_PORT=$((28775 + PORT_OFFSET)) NEUTRON_PORT=$((29696 + PORT_OFFSET))
SERIALPROXY_PORT=$((26083 + PORT_OFFSET))
ALL_PORTS=("$RMQ_PORT" "$RMQ_DIST_PORT" "$DB_PORT" "$KEYSTONE_PORT" "$PLACEMENT_PORT" "$GLANCE_PORT" "$NOVA_PORT"
           "$NOVA_METADATA_PORT" "$NEUTRON_PORT" "$SERIALPROXY_PORT")
if (( PORT_OFFSET == 0 )); then RMQ_NODE=novacp@localhost; else RMQ_NODE=novacp$PORT_OFFSET@localhost; fi
# The host name the Neutron agents report: a Berth node binds ports to it ([neutron] binding_host).
if (( PORT_OFFSET == 0 )); then NEUTRON_HOST=berth-net; else NEUTRON_HOST=berth-net-$PORT_OFFSET; fi
NEUTRON_MODE=${BERTH_CLOUD_NEUTRON:-real}
[[ $NEUTRON_MODE =~ ^(real|stub)$ ]] || { echo "[cloud] BERTH_CLOUD_NEUTRON must be real or stub" >&2; exit 2; }
# Python services, stopped first; the datastores after them.
if [ "$NEUTRON_MODE" = real ]; then
  SERVICES=(nova-serialproxy nova-api nova-conductor nova-scheduler glance-api placement keystone neutron-l3-agent
            neutron-metadata-agent neutron-dhcp-agent neutron-linuxbridge-agent neutron-server)
else
  SERVICES=(nova-serialproxy nova-api nova-conductor nova-scheduler glance-api placement keystone neutron-stub)
fi
# Whichever of the two a state ran before, stop stops it.
ALL_SERVICES=(nova-serialproxy nova-api nova-conductor nova-scheduler glance-api placement keystone neutron-stub neutron-l3-agent
              neutron-metadata-agent neutron-dhcp-agent neutron-linuxbridge-agent neutron-server)
# Debian's OpenStack lives in /usr/bin/python3's dist-packages; another python3 first on PATH
# (pyenv) would not see it.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
unset PYTHONPATH PYTHONHOME PYENV_VERSION VIRTUAL_ENV
# The private node: its own name, ports and directories; epmd (:4369) is shared with other nodes.
export RABBITMQ_NODENAME=$RMQ_NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RMQ_PORT \
  RABBITMQ_DIST_PORT=$RMQ_DIST_PORT RABBITMQ_MNESIA_BASE=$STATE/rmq/mnesia RABBITMQ_LOG_BASE=$STATE/rmq/log \
  RABBITMQ_CONFIG_FILE=$STATE/rmq/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$STATE/rmq/enabled_plugins \
  RABBITMQ_PID_FILE=$STATE/rmq/rabbit.pid ERL_EPMD_ADDRESS=127.0.0.1 \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
  RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

log() { printf '[cloud] %s\n' "$*" >&2; }
# shellcheck source=tools/dev/cloud-neutron.sh
source "$ROOT/tools/dev/cloud-neutron.sh"
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- processes

pidfile() { # the file holding a component's PID
  # RabbitMQ's launcher (su, sh) is not the node: the beam writes its own PID file.
  if [ "$1" = rabbitmq ]; then echo "$STATE/rmq/rabbit.pid"; else echo "$STATE/pids/$1"; fi
}

# The PID of a running component, checked against its command line so a reused PID is not ours.
running_pid() {
  local f pid want
  f=$(pidfile "$1"); [ -s "$f" ] || return 1
  pid=$(cat "$f"); [ -r "/proc/$pid/cmdline" ] || return 1
  case $1 in
    mariadb) want=mariadbd ;; rabbitmq) want=beam ;; rabbitmq-launcher) want=rabbitmq ;;
    placement) want=placement-api ;;
    keystone) want=keystone-wsgi-public ;; nova-serialproxy) want=nova.cmd.serialproxy ;; compute-*) want="--config-file $STATE/ref-compute" ;;
    neutron-server|neutron-*-agent) want="--config-file $STATE/neutron/neutron.conf" ;;
    *) want=$1 ;;
  esac
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$want" || return 1
  echo "$pid"
}

# Starts a daemon in its own session (so it outlives this script and its caller's process group,
# and its forked workers can be signalled as one group) and records its PID. It runs in the state
# directory (SPAWN_DIR for one that needs another), never in the caller's: a daemon whose working
# directory is removed (a checkout deleted while the cloud runs) passes it to what it spawns, and
# the DHCP agent's metadata proxies then fail to start, so new networks' ports never turn ACTIVE.
spawn() { # spawn NAME COMMAND...
  local name=$1 dir=${SPAWN_DIR:-$STATE}; shift
  (cd "$dir" && exec setsid "$@" >>"$STATE/logs/$name.out" 2>&1 </dev/null 9>&-) &
  echo $! > "$STATE/pids/$name"
}

# Component logs, for a failure message.
log_tail() {
  local f
  for f in "$STATE/logs/$1.out" "$STATE/logs/$1.log" ; do
    [ -s "$f" ] && { printf -- '--- %s (last 25 lines)\n' "$f"; tail -n 25 "$f"; }
  done >&2
  case $1 in
    mariadb) tail -n 25 "$STATE/mysql/mysqld.err" >&2 2>/dev/null || true ;;
    rabbitmq) log_tail rabbitmq-launcher; tail -n 25 "$STATE"/rmq/log/*.log >&2 2>/dev/null || true ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_up NAME SECONDS COMMAND...: until COMMAND succeeds; fails loudly as soon as the process dies.
wait_up() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) launcher=${WAIT_PID:-}
  until "$@" >/dev/null 2>&1; do
    if [ -n "$launcher" ] && ! kill -0 "$launcher" 2>/dev/null; then
      log "$name exited during start-up"; log_tail "$name"; return 1
    fi
    if (( SECONDS >= deadline )); then
      log "$name did not come up within ${secs} s"; log_tail "$name"; return 1
    fi
    sleep 0.3
  done
}

# stop_pid NAME PID GRACE: SIGTERM, then SIGKILL after GRACE seconds. Every component is a session
# leader (spawn), so its group takes forked workers (nova-api, glance-api) along. RabbitMQ is
# signalled by its beam PID alone: the launcher and su exit with it, and epmd is left running.
stop_pid() {
  local name=$1 pid=$2 grace=$3 target=-$2 i
  [ "$name" = rabbitmq ] && target=$pid
  kill -TERM -- "$target" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 -- "$target" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name ($pid) still running ${grace} s after SIGTERM: SIGKILL"
  kill -KILL -- "$target" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 -- "$target" 2>/dev/null || return 0; sleep 0.1; done
}

stop_components() { # stop_components GRACE NAME...: in parallel
  local grace=$1 name pid; shift
  for name in "$@"; do
    if pid=$(running_pid "$name"); then stop_pid "$name" "$pid" "$grace" & fi
  done
  wait
  for name in "$@"; do rm -f "$(pidfile "$name")"; done
}

with_lock() { # one start/stop at a time; the lock lives beside the state, which reset deletes
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  flock -w 600 9 || die "another cloud.sh holds $STATE.lock"
  "$@"
}

# ---------------------------------------------------------------- configuration

gen_pass() { openssl rand -hex 16; }

write_env() { # test-only secrets and the URLs, for `source` by tests and scripts
  local db rabbit admin nova placement glance
  db=$(gen_pass) rabbit=$(gen_pass) admin=$(gen_pass) nova=$(gen_pass) placement=$(gen_pass) glance=$(gen_pass)
  (umask 077; cat > "$STATE/cloud.env" <<EOF
# Test-only credentials of the cloud started by tools/dev/cloud.sh; source this file.
export OS_AUTH_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_USERNAME=admin
export OS_PASSWORD=$admin
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_COMPUTE_API_VERSION=2.90
export BERTH_CLOUD_STATE=$STATE
export BERTH_CLOUD_DB_PASS=$db
export BERTH_CLOUD_DB_URL=mysql+pymysql://os:$db@127.0.0.1:$DB_PORT
export BERTH_CLOUD_DB_SOCKET=$STATE/mysql/mysqld.sock
export BERTH_CLOUD_RABBIT_USER=openstack
export BERTH_CLOUD_RABBIT_PASS=$rabbit
export BERTH_CLOUD_TRANSPORT_URL=rabbit://openstack:$rabbit@127.0.0.1:$RMQ_PORT/
export BERTH_CLOUD_AMQP_URL=amqp://openstack:$rabbit@127.0.0.1:$RMQ_PORT
export BERTH_CLOUD_NOVA_USER=nova
export BERTH_CLOUD_NOVA_PASS=$nova
export BERTH_CLOUD_PLACEMENT_USER=placement
export BERTH_CLOUD_PLACEMENT_PASS=$placement
export BERTH_CLOUD_GLANCE_USER=glance
export BERTH_CLOUD_GLANCE_PASS=$glance
export BERTH_CLOUD_SERVICE_PROJECT=service
export BERTH_CLOUD_KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
export BERTH_CLOUD_PLACEMENT_URL=http://127.0.0.1:$PLACEMENT_PORT
export BERTH_CLOUD_GLANCE_URL=http://127.0.0.1:$GLANCE_PORT
export BERTH_CLOUD_COMPUTE_URL=http://127.0.0.1:$NOVA_PORT/v2.1
export BERTH_CLOUD_NEUTRON_URL=http://127.0.0.1:$NEUTRON_PORT
export BERTH_CLOUD_NOVA_CONF=$STATE/nova/nova.conf
export BERTH_CLOUD_PORT_OFFSET=$PORT_OFFSET
EOF
  )
}

require_env() {
  [ -f "$STATE/cloud.env" ] || die "no $STATE/cloud.env: run tools/dev/cloud.sh start"
  # shellcheck disable=SC1091
  source "$STATE/cloud.env"
}

auth_block() { # the keystone auth options every service uses; only the user changes
  cat <<EOF
www_authenticate_uri = $BERTH_CLOUD_KEYSTONE_URL
auth_url = $BERTH_CLOUD_KEYSTONE_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $2
region_name = RegionOne
EOF
}

# Values are substituted here, when written: oslo.config would read a literal $name as a reference.
write_configs() {
  local db=$BERTH_CLOUD_DB_URL
  # The files hold the passwords; mysqld and rabbitmq read theirs as owners (chown at start).
  umask 077
  cat > "$STATE/mysql/my.cnf" <<EOF
[mysqld]
datadir=$STATE/mysql/data
socket=$STATE/mysql/mysqld.sock
pid-file=$STATE/mysql/mysqld.pid
port=$DB_PORT
bind-address=127.0.0.1
user=mysql
log-error=$STATE/mysql/mysqld.err
innodb_buffer_pool_size=128M
max_connections=500
skip-name-resolve
EOF
  printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' "$RMQ_PORT" > "$STATE/rmq/rabbitmq.conf"
  echo '[].' > "$STATE/rmq/enabled_plugins"
  cat > "$STATE/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $STATE/logs/keystone.log
[database]
connection = $db/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF
  cat > "$STATE/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $STATE/logs/placement.log
[api]
auth_strategy = keystone
[keystone_authtoken]
$(auth_block placement "$BERTH_CLOUD_PLACEMENT_PASS")
[placement_database]
connection = $db/placement
EOF
  cat > "$STATE/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $GLANCE_PORT
workers = 1
log_file = $STATE/logs/glance-api.log
enabled_backends = fs:file
[database]
connection = $db/glance
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $STATE/glance/images
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $STATE/glance/locks
[keystone_authtoken]
$(auth_block glance "$BERTH_CLOUD_GLANCE_PASS")
EOF
  cat > "$STATE/nova/nova.conf" <<EOF
[DEFAULT]
transport_url = $BERTH_CLOUD_TRANSPORT_URL
my_ip = 127.0.0.1
state_path = $STATE/nova/state
enabled_apis = $([ "$NEUTRON_MODE" = real ] && echo osapi_compute,metadata || echo osapi_compute)
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $NOVA_PORT
osapi_compute_workers = 1
# A single Berth node resizes in place (nova's scheduler may then pick the instance's own host).
allow_resize_to_same_host = true
metadata_listen = 127.0.0.1
metadata_listen_port = $NOVA_METADATA_PORT
metadata_workers = 1
[api]
auth_strategy = keystone
[api_database]
connection = $db/nova_api
[database]
connection = $db/nova
[conductor]
workers = 1
[scheduler]
workers = 1
# New compute nodes are mapped to cell1 by the scheduler, with no nova-manage step.
discover_hosts_in_cells_interval = 10
[filter_scheduler]
# Nova's defaults, and the same-host / different-host hints (Tempest's multi-node tests use them).
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter
[glance]
region_name = RegionOne
[keystone_authtoken]
$(auth_block nova "$BERTH_CLOUD_NOVA_PASS")
[placement]
$(auth_block placement "$BERTH_CLOUD_PLACEMENT_PASS")
# nova-api deletes never-scheduled servers locally and then calls neutron as admin. Its
# metadata API answers the requests neutron's metadata agent signs with the shared secret.
[neutron]
$(auth_block nova "$BERTH_CLOUD_NOVA_PASS")
service_metadata_proxy = true
metadata_proxy_shared_secret = $BERTH_CLOUD_METADATA_SECRET
[oslo_concurrency]
lock_path = $STATE/nova/locks
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
# nova-serialproxy's address, and the URL of consoles (a Berth node sets the same URL as its own
# [serial_console] base_url: the compute node, not nova-api, builds a console's URL).
[serial_console]
serialproxy_host = 127.0.0.1
serialproxy_port = $SERIALPROXY_PORT
base_url = ws://127.0.0.1:$SERIALPROXY_PORT/
EOF
}

# ---------------------------------------------------------------- bring-up

run_logged() { # run_logged NAME COMMAND...: output to the component's log; fails with its tail
  local name=$1; shift
  "$@" >>"$STATE/logs/$name.out" 2>&1 && return 0
  log "$name: '$*' failed"; log_tail "$name"; return 1
}

# Refuses to start a component whose port something else holds (a stray process from a lost state).
port_free() {
  port_open "$2" || return 0
  log "$1: 127.0.0.1:$2 is already in use by a process this state did not start:"
  ss -ltnp "sport = :$2" >&2 || true
  return 1
}

# spawn_and_wait NAME PORT COMMAND...: a no-op when already running, then waits for its port.
spawn_and_wait() {
  local name=$1 port=$2 pid; shift 2
  if ! pid=$(running_pid "$name"); then
    port_free "$name" "$port"
    spawn "$name" "$@"; pid=$(cat "$STATE/pids/$name")
  fi
  WAIT_PID=$pid wait_up "$name" 90 port_open "$port"
}

mariadb_sql() { mariadb --socket="$STATE/mysql/mysqld.sock" -N -B -e "$1"; }

up_mariadb() {
  chown -R mysql:mysql "$STATE/mysql"
  if [ ! -d "$STATE/mysql/data/mysql" ]; then
    run_logged mariadb mariadb-install-db --defaults-file="$STATE/mysql/my.cnf" --auth-root-authentication-method=socket
  fi
  spawn_and_wait mariadb "$DB_PORT" mariadbd --defaults-file="$STATE/mysql/my.cnf"
  [ "$1" = fresh ] || return 0
  run_logged mariadb mariadb_sql "
    CREATE DATABASE keystone; CREATE DATABASE placement; CREATE DATABASE glance;
    CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0;
    CREATE USER 'os'@'127.0.0.1' IDENTIFIED BY '$BERTH_CLOUD_DB_PASS';
    GRANT ALL PRIVILEGES ON *.* TO 'os'@'127.0.0.1';"
}

rmqctl() { rabbitmqctl -n "$RMQ_NODE" -q "$@"; }

up_rabbitmq() {
  local pid
  if ! running_pid rabbitmq >/dev/null; then
    port_free rabbitmq "$RMQ_PORT"
    chown -R rabbitmq:rabbitmq "$STATE/rmq"
    rm -f "$STATE/rmq/rabbit.pid"
    spawn rabbitmq-launcher rabbitmq-server
  fi
  pid=$(running_pid rabbitmq-launcher || running_pid rabbitmq)
  # await_startup fails with "node not running" until the node has registered with epmd.
  WAIT_PID=$pid wait_up rabbitmq 90 rmqctl await_startup --timeout 5
  [ "$1" = fresh ] || return 0
  run_logged rabbitmq rmqctl add_user "$BERTH_CLOUD_RABBIT_USER" "$BERTH_CLOUD_RABBIT_PASS"
  run_logged rabbitmq rmqctl set_permissions "$BERTH_CLOUD_RABBIT_USER" '.*' '.*' '.*'
}

# One openstack process reads the commands on stdin: separate invocations cost about 3 s each.
# It carries on after a failed command, so the caller checks the output of a final listing.
openstack_batch() { # openstack_batch NAME < commands
  /usr/bin/openstack 2>&1 | tee -a "$STATE/logs/$1.out"
}

catalog_commands() {
  cat <<EOF
project create --domain default service
user create --domain default --password $BERTH_CLOUD_NOVA_PASS $BERTH_CLOUD_NOVA_USER
user create --domain default --password $BERTH_CLOUD_PLACEMENT_PASS $BERTH_CLOUD_PLACEMENT_USER
user create --domain default --password $BERTH_CLOUD_GLANCE_PASS $BERTH_CLOUD_GLANCE_USER
role add --project service --user $BERTH_CLOUD_NOVA_USER admin
role add --project service --user $BERTH_CLOUD_PLACEMENT_USER admin
role add --project service --user $BERTH_CLOUD_GLANCE_USER admin
service create --name nova compute
service create --name placement placement
service create --name glance image
service create --name neutron network
EOF
  local i
  for i in public internal admin; do
    echo "endpoint create --region RegionOne compute $i $BERTH_CLOUD_COMPUTE_URL"
    echo "endpoint create --region RegionOne placement $i $BERTH_CLOUD_PLACEMENT_URL"
    echo "endpoint create --region RegionOne image $i $BERTH_CLOUD_GLANCE_URL"
    echo "endpoint create --region RegionOne network $i $BERTH_CLOUD_NEUTRON_URL"
  done
  # The interactive parser does not honour quotes: no "-c 'Service Name'" here.
  echo 'endpoint list -f value'
}

up_keystone() {
  local k=(--config-file "$STATE/keystone/keystone.conf") url=http://127.0.0.1:$KEYSTONE_PORT/v3/
  if [ "$1" = fresh ]; then
    run_logged keystone keystone-manage "${k[@]}" db_sync
    run_logged keystone keystone-manage "${k[@]}" fernet_setup --keystone-user root --keystone-group root
    run_logged keystone keystone-manage "${k[@]}" credential_setup --keystone-user root --keystone-group root
    run_logged keystone keystone-manage "${k[@]}" bootstrap --bootstrap-password "$OS_PASSWORD" \
      --bootstrap-region-id RegionOne --bootstrap-admin-url "$url" --bootstrap-internal-url "$url" \
      --bootstrap-public-url "$url"
  fi
  spawn_and_wait keystone "$KEYSTONE_PORT" keystone-wsgi-public --host 127.0.0.1 --port "$KEYSTONE_PORT" -- "${k[@]}"
  [ "$1" = fresh ] || return 0
  local n
  n=$(catalog_commands | openstack_batch catalog | grep -cE '^[0-9a-f]{32} RegionOne \S+ (compute|placement|image|network) True (public|internal|admin) http://127\.0\.0\.1:' || true)
  [ "$n" = 12 ] || { log "keystone catalog: $n of 12 endpoints created"; log_tail catalog; return 1; }
}

up_placement() {
  [ "$1" = fresh ] && run_logged placement placement-manage --config-file "$STATE/placement/placement.conf" db sync
  # The placement-api script ignores --config-file.
  spawn_and_wait placement "$PLACEMENT_PORT" env OS_PLACEMENT_CONFIG_DIR="$STATE/placement" \
    placement-api --host 127.0.0.1 --port "$PLACEMENT_PORT"
}

up_glance() {
  local g=(--config-file "$STATE/glance/glance-api.conf")
  [ "$1" = fresh ] && run_logged glance-api glance-manage "${g[@]}" db_sync
  spawn_and_wait glance-api "$GLANCE_PORT" glance-api "${g[@]}"
}

up_neutron_stub() { # tsx is resolved from the repository's node_modules
  SPAWN_DIR=$ROOT spawn_and_wait neutron-stub "$NEUTRON_PORT" node --import tsx tools/dev/neutron-stub.ts "$NEUTRON_PORT"
}

sync_nova_databases() {
  [ "$1" = fresh ] || return 0
  local n=(--config-file "$STATE/nova/nova.conf")
  run_logged nova-manage nova-manage "${n[@]}" api_db sync
  run_logged nova-manage nova-manage "${n[@]}" cell_v2 map_cell0 --database_connection "$BERTH_CLOUD_DB_URL/nova_cell0"
  run_logged nova-manage nova-manage "${n[@]}" cell_v2 create_cell --name=cell1
  run_logged nova-manage nova-manage "${n[@]}" db sync
}

queue_consumed() { rmqctl list_queues name consumers | awk -v q="$1" '$1 == q && $2 > 0 { ok = 1 } END { exit !ok }'; }

# nova-conductor and nova-scheduler listen on no port: they are up once they consume their queues.
up_nova() {
  local n=(--config-file "$STATE/nova/nova.conf") svc pid
  for svc in nova-conductor nova-scheduler; do
    running_pid "$svc" >/dev/null || spawn "$svc" "$svc" "${n[@]}" --log-file "$STATE/logs/$svc.log"
  done
  spawn_and_wait nova-api "$NOVA_PORT" nova-api "${n[@]}" --log-file "$STATE/logs/nova-api.log"
  # Debian ships its script in nova-consoleproxy; the module is in python3-nova already.
  spawn_and_wait nova-serialproxy "$SERIALPROXY_PORT" /usr/bin/python3 -c \
    'import sys; from nova.cmd.serialproxy import main; sys.exit(main())' "${n[@]}" --log-file "$STATE/logs/nova-serialproxy.log"
  for svc in nova-conductor nova-scheduler; do
    pid=$(cat "$STATE/pids/$svc")
    WAIT_PID=$pid wait_up "$svc" 90 queue_consumed "${svc#nova-}"
  done
}

create_flavors() {
  local out
  out=$(printf '%s\n' 'flavor create --ram 512 --disk 1 --vcpus 1 m1.tiny' \
    'flavor create --ram 1024 --disk 2 --vcpus 1 m1.small' 'flavor list -f value -c Name' | openstack_batch flavors)
  grep -qx m1.tiny <<<"$out" && grep -qx m1.small <<<"$out" \
    || { log "flavors m1.tiny and m1.small were not created"; log_tail flavors; return 1; }
}

# Runs the given steps ("function args", split on spaces) as background jobs; fails after all of
# them ended if any failed.
parallel() {
  local pids=() step pid failed=0
  # shellcheck disable=SC2086
  for step in "$@"; do $step & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}

# Relies on errexit: the step that fails has printed its log tail, and ends the script (or its job).
bring_up() { # bring_up fresh|reuse
  local mode=$1
  if [ "$NEUTRON_MODE" = real ]; then
    parallel "up_mariadb $mode" "up_rabbitmq $mode"
  else
    parallel "up_mariadb $mode" "up_rabbitmq $mode" up_neutron_stub
  fi
  parallel "up_keystone $mode" "up_placement $mode" "up_glance $mode" "sync_nova_databases $mode"
  if [ "$NEUTRON_MODE" = real ]; then parallel up_nova up_neutron; else up_nova; fi
  [ "$mode" = reuse ] || create_flavors
}

all_running() {
  local c
  for c in mariadb rabbitmq "${SERVICES[@]}"; do running_pid "$c" >/dev/null || return 1; done
}

make_state() {
  mkdir -p "$STATE"/{mysql/data,rmq/mnesia,rmq/log,keystone,placement,glance/locks,nova/state,nova/locks,neutron,logs,pids}
  touch "$STATE/.berth-cloud"
  # mysqld and rabbitmq run as their own users and must traverse it.
  chmod 755 "$STATE"
}

wipe_state() {
  [ -e "$STATE" ] || return 0
  if [ ! -f "$STATE/.berth-cloud" ] && [ -n "$(ls -A "$STATE")" ]; then
    die "$STATE is not empty and was not made by this script; refusing to delete it"
  fi
  rm -rf "$STATE"
}

start_cloud() {
  local t0=$EPOCHREALTIME mode=reuse
  [ "$(id -u)" = 0 ] || die "start needs root (it runs mysqld and rabbitmq as their users)"
  if [ -f "$STATE/.initialised" ] && all_running; then log "already running"; return 0; fi
  if [ ! -f "$STATE/.initialised" ]; then
    mode=fresh
    if [ -e "$STATE" ]; then log "state of an unfinished start: deleting it"; stop_cloud || true; wipe_state; fi
    make_state; write_env
  fi
  require_env
  # A state made before Neutron gets its variables now; the configs follow cloud.env every start.
  neutron_env; require_env
  mkdir -p "$STATE/neutron"
  write_configs
  trap "log 'start failed ($mode state); logs in $STATE/logs; tools/dev/cloud.sh stop stops what did start'" EXIT
  bring_up $mode
  trap - EXIT
  touch "$STATE/.initialised"
  log "cloud up in $(elapsed "$t0") s ($mode state); credentials: source $STATE/cloud.env"
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- stop, status

stop_cloud() {
  local computes=() f busy=()
  [ -d "$STATE/pids" ] || { log "nothing to stop"; return 0; }
  for f in "$STATE"/pids/compute-*; do [ -e "$f" ] && computes+=("$(basename "$f")"); done
  # Conductor and scheduler ignore SIGTERM for longer than that (oslo.service's graceful stop).
  stop_components 3 "${computes[@]}" "${ALL_SERVICES[@]}"
  stop_neutron_children
  public_link_down
  # The datastores get longer: a killed mysqld or beam may leave state a restart cannot reuse.
  stop_components 15 mariadb rabbitmq
  stop_components 3 rabbitmq-launcher
  for f in "${ALL_PORTS[@]}"; do port_open "$f" && busy+=("$f"); done
  (( ${#busy[@]} == 0 )) || die "still listening after stop: ${busy[*]} (not started by this state)"
  log "stopped"
}

reset_cloud() {
  local links
  links=$(neutron_kernel_objects)
  stop_cloud
  neutron_cleanup "$links"
  wipe_state; rm -f "$STATE.lock"; log "state deleted: $STATE"
}

cloud_status() {
  local c pid down=0 f
  local -A where=([mariadb]=$DB_PORT [rabbitmq]=$RMQ_PORT [keystone]=$KEYSTONE_PORT [placement]=$PLACEMENT_PORT
    [glance-api]=$GLANCE_PORT [nova-api]=$NOVA_PORT [nova-serialproxy]=$SERIALPROXY_PORT [neutron-stub]=$NEUTRON_PORT [neutron-server]=$NEUTRON_PORT)
  for c in mariadb rabbitmq "${SERVICES[@]}"; do
    if pid=$(running_pid "$c"); then printf '%-26s up    pid %-8s %s\n' "$c" "$pid" "${where[$c]:+127.0.0.1:${where[$c]}}"
    else printf '%-26s down\n' "$c"; down=1; fi
  done
  for f in "$STATE"/pids/compute-*; do
    [ -e "$f" ] || continue; c=$(basename "$f")
    if pid=$(running_pid "$c"); then printf '%-15s up    pid %s (reference compute)\n' "$c" "$pid"
    else printf '%-15s down (reference compute)\n' "$c"; fi
  done
  [ -f "$STATE/cloud.env" ] && echo "credentials: source $STATE/cloud.env"
  return $down
}

# ---------------------------------------------------------------- reference compute

# A stock nova-compute with nova's no-op fake driver: the baseline a benchmark compares Berth with.
# Its config is the cloud's nova.conf without database access (a compute node has none), plus a
# second file that names the host and the driver.
reference_compute_start() {
  local host=$1 t0=$EPOCHREALTIME dir pid since
  [[ $host =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] || die "invalid host name: $host"
  require_env
  running_pid nova-conductor >/dev/null || die "the cloud is not running: tools/dev/cloud.sh start"
  if running_pid "compute-$host" >/dev/null; then log "reference compute $host already running"; return 0; fi
  dir=$STATE/ref-compute/$host
  mkdir -p "$dir/state" "$dir/locks"
  umask 077
  awk '/^\[/ { skip = ($0 == "[database]" || $0 == "[api_database]") } !skip' "$STATE/nova/nova.conf" > "$dir/nova.conf"
  cat > "$dir/compute.conf" <<EOF
[DEFAULT]
host = $host
compute_driver = fake.FakeDriver
state_path = $dir/state
[oslo_concurrency]
lock_path = $dir/locks
EOF
  # A host started before already has its rows: only a heartbeat from now on counts as registered.
  since=$(mariadb_sql 'select utc_timestamp()')
  spawn "compute-$host" /usr/bin/python3 -c 'import sys; from nova.cmd.compute import main; sys.exit(main())' \
    --config-file "$dir/nova.conf" --config-file "$dir/compute.conf" --log-file "$STATE/logs/compute-$host.log"
  pid=$(cat "$STATE/pids/compute-$host")
  WAIT_PID=$pid wait_up "compute-$host" 90 db_count 1 \
    "select count(*) from nova.services s join nova.compute_nodes c on c.host = s.host and c.deleted = 0
     where s.host = '$host' and s.binary = 'nova-compute' and s.deleted = 0
     and coalesce(s.updated_at, s.created_at) >= '$since'"
  log "reference compute $host registered after $(elapsed "$t0") s"
  # The provider and its inventory come from the first resource update, right after registration.
  WAIT_PID=$pid wait_up "compute-$host" 60 db_count 3 \
    "select count(*) from placement.inventories i join placement.resource_providers p
     on p.id = i.resource_provider_id where p.name = '$host'"
  # The scheduler maps new hosts every discover_hosts_in_cells_interval (10 s).
  WAIT_PID=$pid wait_up "compute-$host" 60 db_count 1 \
    "select count(*) from nova_api.host_mappings where host = '$host'"
  log "reference compute $host mapped to a cell after $(elapsed "$t0") s"
}

db_count() { [ "$(mariadb_sql "$2")" -ge "$1" ]; }

# Stops the process and deletes its service record (with its compute node, resource provider and
# host mapping): a stopped node would otherwise still count as up, and be scheduled to, for
# service_down_time (60 s). Nova keeps the record while servers are still on the host.
reference_compute_stop() {
  local host=$1 uuid
  require_env
  [ -e "$STATE/pids/compute-$host" ] || { log "no reference compute $host"; return 0; }
  stop_components 3 "compute-$host"
  uuid=$(mariadb_sql "select uuid from nova.services where host = '$host' and \`binary\` = 'nova-compute' and deleted = 0")
  if [ -n "$uuid" ] && ! /usr/bin/openstack compute service delete "$uuid" >>"$STATE/logs/compute-$host.out" 2>&1; then
    log "reference compute $host stopped; its service record stays (servers still on it?):"
    tail -n 3 "$STATE/logs/compute-$host.out" >&2
    return 0
  fi
  log "reference compute $host stopped and deregistered"
}

# ---------------------------------------------------------------- install, main

# Debian's neutron packages would ask (debconf) to configure a database, RabbitMQ, Keystone and the
# catalog: start does all of that for the test cloud.
NEUTRON_DEBCONF='neutron-common neutron/configure_db boolean false
neutron-common neutron/configure_rabbit boolean false
neutron-common neutron/configure_ksat boolean false
neutron-common neutron/configure_nova boolean false
neutron-api neutron/configure_api-endpoint boolean false
neutron-metadata-agent neutron-metadata/configure boolean false'

install_packages() {
  local missing=() p t0=$EPOCHREALTIME had_policy=0
  for p in "${PACKAGES[@]}" "${NEUTRON_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then log "packages present"; return 0; fi
  log "installing: ${missing[*]}"
  apt-get update -qq
  # The packages' scripts must not start services on the default ports: start runs them on loopback.
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  debconf-set-selections <<<"$NEUTRON_DEBCONF"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
  log "packages installed in $(elapsed "$t0") s"
}

usage() { echo "usage: $0 install|start|stop|status|env|reset|reference-compute start|stop HOST" >&2; exit 2; }

case "${1:-}" in
  install) install_packages ;;
  start) with_lock start_cloud ;;
  stop) with_lock stop_cloud ;;
  reset) with_lock reset_cloud ;;
  status) cloud_status ;;
  env) require_env; grep '^export OS_' "$STATE/cloud.env" ;;
  reference-compute)
    [ $# = 3 ] || usage
    case $2 in
      start) with_lock reference_compute_start "$3" ;;
      stop) with_lock reference_compute_stop "$3" ;;
      *) usage ;;
    esac ;;
  *) usage ;;
esac
