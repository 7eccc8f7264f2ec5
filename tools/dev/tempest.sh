#!/usr/bin/env bash
# OpenStack's own test suite, Tempest (Debian's `tempest` 33, Zed-compatible), against the test
# cloud of tools/dev/cloud.sh with a Berth node joined to it (docs/tempest.md). Needs root and the
# cloud started. Usage:
#   tools/dev/tempest.sh install          Debian's tempest package (idempotent)
#   tools/dev/tempest.sh run [SET]        start the node, write tempest.conf, run SET (default
#                                         compute), stop the node; exit 0 only when nothing failed
#                                         (npm run test:tempest [-- SET])
#   tools/dev/tempest.sh node start|stop  the Berth node alone (for running tempest by hand)
#   tools/dev/tempest.sh conf             (re)write tempest.conf for a running node
#   tools/dev/tempest.sh summary          counts and test ids of the last run, as JSON
# SET: quick (the compute subset npm test runs, a few minutes), compute (all of
# tempest.api.compute, the longer run), or any stestr regex.
# State: BERTH_TEMPEST_STATE (default /var/lib/berth-tempest): the Tempest workspace
# (workspace/etc/tempest.conf, its .stestr results), the node's log and info, summary.json.
# Environment: BERTH_TEMPEST_CONCURRENCY (2), BERTH_TEMPEST_HOST (berth-tempest),
# BERTH_TEMPEST_PORT_BASE (43000: the node listens on BASE+292 and BASE+393, consoles on BASE+10..89), BERTH_TEMPEST_TRAIT
# (CUSTOM_BERTH_TEMPEST: the trait that pins the test image to this node; give each concurrent
# run its own), BERTH_CLOUD_STATE, BERTH_TEMPEST_NODES (1; 2 starts a second Berth node, host
# BERTH_TEMPEST_HOST-b on BASE+500, carrying the same trait, for the resize and cold-migration
# tests: compute.min_compute_nodes = 2 and the resize / cold_migration flags on).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${BERTH_TEMPEST_STATE:-/var/lib/berth-tempest}
CLOUD_STATE=${BERTH_CLOUD_STATE:-/var/lib/berth-cp}
WORKSPACE=$STATE/workspace
CONCURRENCY=${BERTH_TEMPEST_CONCURRENCY:-2}
NODES=${BERTH_TEMPEST_NODES:-1}
[[ $NODES == 1 || $NODES == 2 ]] || { echo "BERTH_TEMPEST_NODES must be 1 or 2" >&2; exit 2; }
# Node 1: node.json, node.pid, node.log; node 2: node-b.*.
NODE_INFO=$STATE/node.json NODE_PID=$STATE/node.pid NODE_LOG=$STATE/node.log
TRAIT=${BERTH_TEMPEST_TRAIT:-CUSTOM_BERTH_TEMPEST}
# The subset npm test runs: every test of these classes passes on a Berth node in a few minutes.
QUICK='^tempest\.api\.compute\.(flavors\.test_flavors\.|keypairs\.test_keypairs\.|limits\.|servers\.test_create_server\.ServersTestJSON\.|servers\.test_instance_actions\.|servers\.test_servers\.ServersTestJSON\.|admin\.test_hypervisor\.)'
COMPUTE='^tempest\.api\.compute\.'
# Debian's OpenStack lives in /usr/bin/python3's dist-packages; another python3 first on PATH
# (pyenv) would not see it.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
unset PYTHONPATH PYTHONHOME PYENV_VERSION VIRTUAL_ENV

log() { printf '[tempest] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

install() {
  if dpkg-query -W -f='${Status}' tempest 2>/dev/null | grep -q 'install ok installed'; then log "tempest present"; return; fi
  log "installing Debian's tempest"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tempest >/dev/null
}

cloud_env() {
  [ -r "$CLOUD_STATE/cloud.env" ] || die "no $CLOUD_STATE/cloud.env: start the test cloud (tools/dev/cloud.sh start)"
  # shellcheck disable=SC1091
  source "$CLOUD_STATE/cloud.env"
  bash "$ROOT/tools/dev/cloud.sh" status >/dev/null || die "the test cloud is not (fully) up: tools/dev/cloud.sh status"
}

# Every node function takes the node's suffix: '' (the first node) or '-b' (the second).
node_files() { NODE_INFO=$STATE/node$1.json NODE_PID=$STATE/node$1.pid NODE_LOG=$STATE/node$1.log; }

node_pid() {
  local pid
  node_files "${1:-}"
  [ -s "$NODE_PID" ] || return 1
  pid=$(cat "$NODE_PID")
  tr "\\0" " " 2>/dev/null < "/proc/$pid/cmdline" | grep -qF 'tempest-node.ts' || return 1
  echo "$pid"
}

node_start() {
  local sfx=${1:-}
  mkdir -p "$STATE"
  if node_pid "$sfx" >/dev/null; then log "node$sfx already running"; return; fi
  rm -f "$NODE_INFO"
  # setsid execs the node in a session of its own: its PID is the one recorded, and its group
  # is what node_stop signals. The second node: its own host name and ports (BASE+500).
  cd "$ROOT"
  local env=()
  [ -z "$sfx" ] || env=(BERTH_TEMPEST_HOST="${BERTH_TEMPEST_HOST:-berth-tempest}$sfx" BERTH_TEMPEST_PORT_BASE=$((${BERTH_TEMPEST_PORT_BASE:-43000} + 500)))
  env "${env[@]}" setsid node --import tsx tools/dev/tempest-node.ts "$NODE_INFO" >>"$NODE_LOG" 2>&1 </dev/null 8>&- &
  local pid=$!
  echo "$pid" > "$NODE_PID"
  local deadline=$((SECONDS + 180))
  until [ -s "$NODE_INFO" ]; do
    # Alive, not node_pid: until the child has exec'd, its command line is still this script's.
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$NODE_LOG" >&2; die "the Berth node exited during start-up (log: $NODE_LOG)"; }
    (( SECONDS < deadline )) || { tail -n 30 "$NODE_LOG" >&2; die "the Berth node did not start within 180 s"; }
    sleep 1
  done
  wait_hypervisor
  pin_to_node "$sfx"
  log "node $(node_host) up, image $(node_image)"
  node_files ''
}

# The first node, then the second when BERTH_TEMPEST_NODES=2.
nodes_start() {
  node_start ''
  [ "$NODES" = 1 ] || node_start -b
}

nodes_stop() {
  [ "$NODES" = 1 ] || node_stop -b
  node_stop ''
}

node_stop() {
  local pid i
  node_files "${1:-}"
  pid=$(node_pid "${1:-}") || { log "node${1:-} not running"; rm -f "$NODE_PID"; node_files ''; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "node still running after 30 s: SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  rm -f "$NODE_PID"
  log "node${1:-} stopped"
  node_files ''
}

json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$NODE_INFO" "$1"; }
node_host() { json_field host; }
node_image() { json_field image_id; }
node_image_alt() { json_field image_alt_id; }
os() { openstack "$@"; }

# Nova maps the new host to its cell within the scheduler's discovery interval.
wait_hypervisor() {
  local host deadline=$((SECONDS + 120))
  host=$(node_host)
  # Below 2.88 the list asks no node for its uptime: an RPC call that waits 60 s (and fails the
  # list) on a node another run has just stopped and nova still counts up.
  until os --os-compute-api-version 2.87 hypervisor list -f value -c 'Hypervisor Hostname' -c State 2>/dev/null | grep -q "^$host up"; do
    (( SECONDS < deadline )) || die "hypervisor $host did not come up in nova within 120 s"
    sleep 2
  done
}

# Other Berth nodes may join the shared test cloud while Tempest runs; servers booted from the
# Tempest image go to this run's nodes only (an image trait their resource providers alone
# carry). The images are the first node's; the second node gets the trait only.
pin_to_node() {
  local host image rp traits
  host=$(node_host) image=$(node_image)
  rp=$(os resource provider list --name "$host" -f value -c uuid)
  [ -n "$rp" ] || die "no resource provider named $host"
  os --os-placement-api-version 1.6 trait create "$TRAIT" >/dev/null
  traits=$(os --os-placement-api-version 1.6 resource provider trait list "$rp" -f value -c name)
  # shellcheck disable=SC2046
  os --os-placement-api-version 1.6 resource provider trait set $(printf -- '--trait %s ' $traits "$TRAIT") "$rp" >/dev/null
  [ -n "${1:-}" ] && return 0
  os image set --property "trait:$TRAIT=required" "$image"
  os image set --property "trait:$TRAIT=required" "$(node_image_alt)"
}

flavor_id() { os flavor show "$1" -f value -c id; }

# The scheduler filters the cloud's nova runs with (nova's defaults unless its nova.conf sets
# them): Tempest runs the scheduler-hint tests of the filters named here only.
scheduler_filters() {
  local line
  line=$(grep -E '^enabled_filters *=' "$CLOUD_STATE/nova/nova.conf" 2>/dev/null | tail -n 1 | sed -E 's/^[^=]*= *//')
  echo "${line:-ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter}"
}

write_conf() {
  local image image_alt NEUTRON=false NETWORK_CONF="" fixed_network="" MOVES=false
  image=$(node_image) image_alt=$(node_image_alt)
  # Resize and cold migration move servers between two Berth nodes (a node resizes in place too,
  # but Tempest's cold migrations need another host).
  [ "$NODES" = 1 ] || MOVES=true
  local ISOLATED=false SHARED=true FLOATING=false public_conf="" public_id
  # A cloud with Neutron (cloud.env names its network): servers get ports on that shared network.
  # With routers and an external network too (cloud.env names it; tools/dev/cloud-public.sh), each
  # test project gets its own network, subnet and router to it from Tempest's dynamic credentials
  # (which needs shared_physical_network false: its vxlan networks keep projects apart), as in a
  # gate run, and the floating IP tests run.
  if [ -n "${BERTH_CLOUD_NEUTRON_NET:-}" ]; then
    NEUTRON=true
    if [ -n "${BERTH_CLOUD_PUBLIC_NET:-}" ]; then
      public_id=$(os network show "$BERTH_CLOUD_PUBLIC_NET" -f value -c id) \
        || die "cloud.env names the external network $BERTH_CLOUD_PUBLIC_NET, which Neutron does not know"
      ISOLATED=true SHARED=false FLOATING=true
      public_conf="public_network_id = $public_id
floating_network_name = $BERTH_CLOUD_PUBLIC_NET"
    fi
    NETWORK_CONF="[network]
shared_physical_network = $SHARED
project_networks_reachable = false
$public_conf

[network-feature-enabled]
ipv6 = false
floating_ips = $FLOATING"
    fixed_network="fixed_network_name = $BERTH_CLOUD_NEUTRON_NET"
  fi
  [ -d "$WORKSPACE" ] || tempest init --workspace-path "$STATE/workspaces.yaml" --name berth "$WORKSPACE" >/dev/null
  mkdir -p "$WORKSPACE/etc" "$WORKSPACE/logs"
  cat > "$WORKSPACE/etc/tempest.conf" <<EOF
# Written by tools/dev/tempest.sh for the test cloud with Berth node $(node_host) joined.
[DEFAULT]
log_file = $WORKSPACE/logs/tempest.log
debug = false

[auth]
use_dynamic_credentials = true
create_isolated_networks = $ISOLATED
admin_username = $OS_USERNAME
admin_password = $OS_PASSWORD
admin_project_name = $OS_PROJECT_NAME
admin_domain_name = Default

[identity]
uri_v3 = $OS_AUTH_URL
auth_version = v3
region = RegionOne

[identity-feature-enabled]
api_v2 = false
api_v2_admin = false

[compute]
image_ref = $image
image_ref_alt = $image_alt
flavor_ref = $(flavor_id m1.tiny)
flavor_ref_alt = $(flavor_id m1.small)
min_compute_nodes = $NODES
# Up to the cloud's own maximum (Zed: 2.93); cloud.env's 2.90 is the CLI's default only.
max_microversion = latest
build_timeout = 120
$fixed_network

# What Berth implements today; each flag turns on as the feature lands (docs/tempest.md).
[compute-feature-enabled]
console_output = true
pause = true
suspend = true
snapshot = true
disk_config = true
enable_instance_password = true
resize = $MOVES
cold_migration = $MOVES
live_migration = false
shelve = true
rescue = false
change_password = false
interface_attach = $NEUTRON
metadata_service = false
config_drive = true
personality = false
attach_encrypted_volume = false
vnc_console = false
spice_console = false
serial_console = true
scheduler_enabled_filters = $(scheduler_filters)

[service_available]
nova = true
glance = true
neutron = $NEUTRON
cinder = false
swift = false

[image-feature-enabled]
api_v1 = false
api_v2 = true

[validation]
run_validation = false
$NETWORK_CONF

[oslo_concurrency]
lock_path = $WORKSPACE/tempest_lock
EOF
  log "wrote $WORKSPACE/etc/tempest.conf"
}

# Counts and test ids of the last run, from stestr's subunit stream: JSON on stdout.
summary() {
  (cd "$WORKSPACE" && stestr last --subunit) | /usr/bin/python3 -c '
import json, sys, subunit, testtools
counts = {"passed": 0, "skipped": 0, "failed": 0}
skipped, failed = {}, []
class R(testtools.StreamResult):
    def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None, **kw):
        if test_id is None: return
        if test_status == "success": counts["passed"] += 1
        elif test_status == "skip":
            counts["skipped"] += 1; skipped.setdefault(test_id, "")
        elif test_status in ("fail", "uxsuccess"):
            counts["failed"] += 1; failed.append(test_id)
        if file_name == "reason" and file_bytes: skipped[test_id] = skipped.get(test_id, "") + file_bytes.decode("utf8", "replace")
r = R(); r.startTestRun()
subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout").run(r)
r.stopTestRun()
print(json.dumps({**counts, "total": sum(counts.values()), "failed_tests": sorted(set(failed)), "skipped_tests": skipped}, indent=1))
'
}

run_set() {
  local set=$1 regex status=0
  case $set in
    quick) regex=$QUICK ;;
    compute) regex=$COMPUTE ;;
    *) regex=$set ;;
  esac
  mkdir -p "$STATE"
  # One run at a time per state directory: a second would stop the first one's node.
  exec 8>"$STATE/run.lock"
  flock -n 8 || die "another Tempest run holds $STATE/run.lock"
  cloud_env
  trap nodes_stop EXIT
  nodes_start
  write_conf
  log "running $set with concurrency $CONCURRENCY"
  (cd "$WORKSPACE" && tempest run --regex "$regex" --concurrency "$CONCURRENCY") || status=$?
  summary > "$STATE/summary.json" || die "could not read the results of the run"
  /usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("tempest %s: %d passed, %d skipped, %d failed" % (sys.argv[2], s["passed"], s["skipped"], s["failed"]))' "$STATE/summary.json" "$set"
  return $status
}

case ${1:-} in
  install) install ;;
  run) run_set "${2:-compute}" ;;
  node)
    case ${2:-} in
      start) cloud_env; nodes_start ;;
      stop) nodes_stop ;;
      *) die "usage: $0 node start|stop" ;;
    esac ;;
  conf) cloud_env; write_conf ;;
  summary) summary ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
