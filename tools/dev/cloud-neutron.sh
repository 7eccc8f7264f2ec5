# shellcheck shell=bash
# Neutron for the test cloud of tools/dev/cloud.sh (sourced by it; not run alone): neutron-server
# with ML2 (linuxbridge + l2population, port_security; flat and vxlan) and the router service
# plugin, the linuxbridge agent (iptables firewall), the DHCP agent (isolated metadata), the
# metadata agent and the L3 agent (routers, floating IPs), on loopback, with their own RabbitMQ
# vhost; an external network `public` the host reaches (tools/dev/cloud-public.sh). Each cloud
# (BERTH_CLOUD_PORT_OFFSET) gets its own provider link, VNI range, agent host name and iptables
# chain prefix, so two clouds on one host keep apart. The agents only ever touch the bridges,
# taps, namespaces and chains of this cloud's networks.

# shellcheck source=tools/dev/cloud-public.sh
source "$ROOT/tools/dev/cloud-public.sh"

NEUTRON_COMPONENTS=(neutron-l3-agent neutron-metadata-agent neutron-dhcp-agent neutron-linuxbridge-agent neutron-server)
# The linuxbridge agent's name prefixes its iptables chains (neutron takes argv[0], cut to 16
# characters): a per-cloud name keeps two clouds' agents from rewriting each other's chains.
NEUTRON_LB_NAME=neutron-lb-$PORT_OFFSET
# The provider link of physnet1 (this kernel has no dummy links: a veth pair, one end unused).
NEUTRON_PROVIDER=bcpn${PORT_OFFSET}a NEUTRON_PROVIDER_PEER=bcpn${PORT_OFFSET}b
# VXLAN network ids of this cloud: disjoint from another cloud's on the same host (vxlan-<VNI>
# devices are host-wide).
NEUTRON_VNI_FIRST=$((PORT_OFFSET * 10 + 1)) NEUTRON_VNI_LAST=$((PORT_OFFSET * 10 + 1000))
# The network and subnet a start creates for the tests (shared with every project).
NEUTRON_TEST_NET=berth-net NEUTRON_TEST_CIDR=10.77.$((PORT_OFFSET % 256)).0/24

# Variables that states made before Neutron lack: appended once, so an old state keeps its secrets.
neutron_env() {
  grep -q '^export BERTH_CLOUD_NEUTRON_PASS=' "$STATE/cloud.env" && return 0
  local pass secret
  pass=$(gen_pass) secret=$(gen_pass)
  cat >> "$STATE/cloud.env" <<EOF
export BERTH_CLOUD_NEUTRON_USER=neutron
export BERTH_CLOUD_NEUTRON_PASS=$pass
export BERTH_CLOUD_METADATA_SECRET=$secret
export BERTH_CLOUD_NEUTRON_HOST=$NEUTRON_HOST
export BERTH_CLOUD_NEUTRON_NET=$NEUTRON_TEST_NET
export BERTH_CLOUD_NEUTRON_CIDR=$NEUTRON_TEST_CIDR
export BERTH_CLOUD_NEUTRON_TRANSPORT_URL=rabbit://openstack:$BERTH_CLOUD_RABBIT_PASS@127.0.0.1:$RMQ_PORT/neutron
EOF
}

write_neutron_configs() {
  local d=$STATE/neutron
  mkdir -p "$d/state" "$d/locks"
  umask 077
  cat > "$d/neutron.conf" <<EOF
[DEFAULT]
host = $NEUTRON_HOST
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
bind_host = 127.0.0.1
bind_port = $NEUTRON_PORT
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
state_path = $d/state
api_paste_config = /etc/neutron/api-paste.ini
transport_url = $BERTH_CLOUD_NEUTRON_TRANSPORT_URL
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
# Events to nova go out at once when none went in the last interval, else batched per interval:
# 1 s instead of 2 s (an operator's setting; docs/nova-mode.md, boot on a Neutron network).
send_events_interval = 1
# Agents report every 10 s and count as down after 40 s (defaults 30/75): a start waits less.
[agent]
# As root already; the PATH puts the ebtables wrapper (write_ebtables_wrapper) first.
root_helper = env PATH=$d/bin:/usr/sbin:/usr/bin:/sbin:/bin
report_interval = 10
[database]
connection = $BERTH_CLOUD_DB_URL/neutron
[keystone_authtoken]
$(auth_block neutron "$BERTH_CLOUD_NEUTRON_PASS")
[nova]
$(auth_block nova "$BERTH_CLOUD_NOVA_PASS")
[oslo_concurrency]
lock_path = $d/locks
[experimental]
linuxbridge = true
EOF
  cat > "$d/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = linuxbridge,l2population
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1,$NEUTRON_PUBLIC_PHYSNET
[ml2_type_vxlan]
vni_ranges = $NEUTRON_VNI_FIRST:$NEUTRON_VNI_LAST
[securitygroup]
enable_security_group = true
enable_ipset = true
EOF
  cat > "$d/linuxbridge_agent.ini" <<EOF
# The agent looks for new taps every polling_interval seconds: 1 s instead of 2 s (an
# operator's setting; docs/nova-mode.md, boot on a Neutron network).
[agent]
polling_interval = 1
[linux_bridge]
physical_interface_mappings = physnet1:$NEUTRON_PROVIDER,$NEUTRON_PUBLIC_PHYSNET:$NEUTRON_PUBLIC_LINK
[vxlan]
enable_vxlan = true
local_ip = 127.0.0.1
l2_population = true
[securitygroup]
enable_security_group = true
firewall_driver = iptables
EOF
  cat > "$d/dhcp_agent.ini" <<EOF
[DEFAULT]
interface_driver = linuxbridge
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = true
force_metadata = true
EOF
  cat > "$d/metadata_agent.ini" <<EOF
[DEFAULT]
nova_metadata_host = 127.0.0.1
nova_metadata_port = $NOVA_METADATA_PORT
metadata_proxy_shared_secret = $BERTH_CLOUD_METADATA_SECRET
metadata_proxy_socket = $d/state/metadata_proxy
metadata_workers = 1
EOF
  write_l3_config "$d"
  ln -sfn /usr/bin/neutron-linuxbridge-agent "$d/$NEUTRON_LB_NAME"
  write_ebtables_wrapper "$d/bin"
  # dnsmasq drops to nobody and must read its hosts file: the agents make their files readable
  # (the configs above stay 600), in directories nobody can traverse.
  umask 022
  chmod 755 "$d"
  find "$d/state" -type d -exec chmod 755 {} +
}

neutron_args() { # the config files of a neutron component
  local d=$STATE/neutron
  case $1 in
    neutron-server) echo "--config-file $d/neutron.conf --config-file $d/ml2_conf.ini" ;;
    neutron-linuxbridge-agent) echo "--config-file $d/neutron.conf --config-file $d/linuxbridge_agent.ini" ;;
    neutron-dhcp-agent) echo "--config-file $d/neutron.conf --config-file $d/dhcp_agent.ini" ;;
    neutron-metadata-agent) echo "--config-file $d/neutron.conf --config-file $d/metadata_agent.ini" ;;
    neutron-l3-agent) echo "--config-file $d/neutron.conf --config-file $d/l3_agent.ini" ;;
  esac
}

# Once per state (an old state without Neutron gets it at its next start): database, vhost,
# service user, schema.
init_neutron() {
  [ -f "$STATE/neutron/.initialised" ] && return 0
  run_logged neutron-server mariadb_sql "CREATE DATABASE IF NOT EXISTS neutron"
  rmqctl add_vhost neutron >/dev/null 2>&1 || true
  run_logged rabbitmq rmqctl set_permissions -p neutron "$BERTH_CLOUD_RABBIT_USER" '.*' '.*' '.*'
  local out
  out=$(printf '%s\n' "user create --domain default --or-show --password $BERTH_CLOUD_NEUTRON_PASS $BERTH_CLOUD_NEUTRON_USER" \
    "role add --project service --user $BERTH_CLOUD_NEUTRON_USER admin" \
    'role assignment list --names --project service -f value -c User' | openstack_batch neutron-identity)
  grep -q "^$BERTH_CLOUD_NEUTRON_USER@Default" <<<"$out" || { log "keystone: user neutron has no role in project service"; log_tail neutron-identity; return 1; }
  # shellcheck disable=SC2046
  run_logged neutron-server neutron-db-manage $(neutron_args neutron-server) upgrade head
  touch "$STATE/neutron/.initialised"
}

provider_link() {
  ip link show "$NEUTRON_PROVIDER" >/dev/null 2>&1 \
    || ip link add "$NEUTRON_PROVIDER" type veth peer name "$NEUTRON_PROVIDER_PEER"
  ip link set "$NEUTRON_PROVIDER" up
  ip link set "$NEUTRON_PROVIDER_PEER" up
}

# neutron 21's linuxbridge agent cannot delete an ebtables (nft) rule with --among-src, which it
# tries when it processes a port again after a restart, and then resyncs forever. Before it
# starts, the nat-table chains of this cloud's own ports (and the PREROUTING jumps to them) are
# removed; it writes them anew. Other clouds' and other programs' rules are not touched.
# ebtables (nft flavour) cannot delete a rule holding an among match by its spec ("RULE_DELETE
# failed (Invalid argument)"), which the linuxbridge agent does whenever it processes a port with
# port security again (a security group change, a port update, a tap gone); it then resyncs
# forever and plugs no new tap. The agents find this wrapper first on their PATH: such a rule is
# deleted by its number in the chain's listing instead; every other call goes through unchanged.
write_ebtables_wrapper() {
  mkdir -p "$1"
  cat > "$1/ebtables" <<'WRAPPER'
#!/bin/bash
set -u
real=/usr/sbin/ebtables
case " $* " in *" -D "*" --among-"*) ;; *) exec "$real" "$@" ;; esac
"$real" "$@" 2>/dev/null && exit 0
macs() { # a MAC list as ebtables lists it: fa:16:3e:0a:00:01 -> fa:16:3e:a:0:1
  local out='' one m o
  IFS=, read -ra list <<<"$1"
  for one in "${list[@]}"; do
    m=''
    IFS=: read -ra octets <<<"$one"
    for o in "${octets[@]}"; do m+="${m:+:}$(printf '%x' "0x$o")"; done
    out+="${out:+,}$m"
  done
  printf '%s' "$out"
}
args=("$@") table=filter chain='' spec=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) table=$2; shift 2 ;;
    --concurrent) shift ;;
    -D) chain=$2; shift 2 ;;
    --among-src|--among-dst) spec+=("$1" "$(macs "$2")"); shift 2 ;;
    *) spec+=("$1"); shift ;;
  esac
done
n=$("$real" -t "$table" -L "$chain" --Ln 2>/dev/null \
  | awk -v want="${spec[*]}" '$1 ~ /^[0-9]+$/ { num = $1; $1 = ""; sub(/^ /, ""); if ($0 == want) { print num; exit } }')
[ -n "$n" ] || exec "$real" "${args[@]}"
exec "$real" -t "$table" --concurrent -D "$chain" "$n"
WRAPPER
  chmod 755 "$1/ebtables"
}

clear_port_ebtables() {
  local ids id tap chain rules
  ids=$(mariadb_sql "select id from neutron.ports" 2>/dev/null) || return 0
  [ -n "$ids" ] || return 0
  rules=$(ebtables -t nat -L PREROUTING 2>/dev/null) || return 0
  for id in $ids; do
    tap=tap${id:0:11}
    for chain in "neutronMAC-$tap" "neutronARP-$tap"; do
      # Each jump is deleted in the form it has (with or without -p ARP); a form it lacks fails,
      # which must not end the start (errexit).
      if grep -q -- "-j $chain\$" <<<"$rules"; then ebtables -t nat -D PREROUTING -i "$tap" -j "$chain" 2>/dev/null || true; fi
      if grep -q -- "-p ARP -i $tap -j $chain\$" <<<"$rules"; then ebtables -t nat -D PREROUTING -p ARP -i "$tap" -j "$chain" 2>/dev/null || true; fi
      ebtables -t nat -F "$chain" 2>/dev/null && { ebtables -t nat -X "$chain" 2>/dev/null || true; }
    done
  done
  return 0
}

agent_alive() { # agent_alive BINARY: the agent reported and counts as alive
  neutron_api_count "agents?binary=$1&host=$NEUTRON_HOST&alive=true" agents -ge 1
}

# neutron_api_count PATH KEY OP N: a GET on the API as admin, comparing the list's length.
neutron_api_count() {
  local n
  n=$(curl -fsS -H "X-Auth-Token: $(admin_token)" "http://127.0.0.1:$NEUTRON_PORT/v2.0/$1" \
    | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)['$2']))") || return 1
  [ "$n" "$3" "$4" ]
}

admin_token() { # cached for the length of one start
  if [ -z "${ADMIN_TOKEN:-}" ]; then
    ADMIN_TOKEN=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$OS_USERNAME\",\"domain\":{\"name\":\"Default\"},\"password\":\"$OS_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"$OS_PROJECT_NAME\",\"domain\":{\"name\":\"Default\"}}}}}" \
      "$OS_AUTH_URL/auth/tokens" | awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }')
  fi
  echo "$ADMIN_TOKEN"
}

spawn_neutron() { # spawn_neutron NAME [BINARY]
  local name=$1 bin=${2:-$1}
  running_pid "$name" >/dev/null && return 0
  # shellcheck disable=SC2046
  spawn "$name" "$bin" $(neutron_args "$name") --log-file "$STATE/logs/$name.log"
}

# After the database and keystone: the server first (the agents report to it), then the agents
# together. Resolves once every agent counts as alive.
up_neutron() {
  local t0=$EPOCHREALTIME b
  write_neutron_configs
  init_neutron
  provider_link
  public_link
  spawn_and_wait neutron-server "$NEUTRON_PORT" neutron-server $(neutron_args neutron-server) --log-file "$STATE/logs/neutron-server.log"
  log "neutron-server up after $(elapsed "$t0") s"
  if ! running_pid neutron-linuxbridge-agent >/dev/null; then clear_port_ebtables; fi
  spawn_neutron neutron-linuxbridge-agent "$STATE/neutron/$NEUTRON_LB_NAME"
  spawn_neutron neutron-dhcp-agent
  spawn_neutron neutron-metadata-agent
  spawn_neutron neutron-l3-agent
  for b in neutron-linuxbridge-agent neutron-dhcp-agent neutron-metadata-agent neutron-l3-agent; do
    WAIT_PID=$(cat "$STATE/pids/$b") wait_up "$b" 120 agent_alive "$b"
  done
  log "neutron agents alive after $(elapsed "$t0") s"
  test_network
  public_network
}

test_network() {
  [ -f "$STATE/neutron/.network" ] && return 0
  local out
  out=$(printf '%s\n' "network create --share $NEUTRON_TEST_NET" \
    "subnet create --network $NEUTRON_TEST_NET --subnet-range $NEUTRON_TEST_CIDR $NEUTRON_TEST_NET" \
    'subnet list -f value -c Name -c Subnet' | openstack_batch neutron-network)
  grep -q "^$NEUTRON_TEST_NET $NEUTRON_TEST_CIDR\$" <<<"$out" || { log "the test network was not created"; log_tail neutron-network; return 1; }
  touch "$STATE/neutron/.network"
}

# The kernel objects of this cloud's networks (bridges, DHCP namespaces, vxlan devices, security
# group ipsets), found
# through its database while it runs; reset deletes them after the stop.
neutron_kernel_objects() {
  local id
  for id in $(mariadb_sql "select id from neutron.networks" 2>/dev/null || true); do
    echo "link brq${id:0:11}"; echo "netns qdhcp-$id"
  done
  for id in $(mariadb_sql "select id from neutron.routers" 2>/dev/null || true); do
    echo "netns qrouter-$id"
  done
  for id in $(mariadb_sql "select segmentation_id from neutron.networksegments where network_type = 'vxlan'" 2>/dev/null || true); do
    echo "link vxlan-$id"
  done
  for id in $(mariadb_sql "select id from neutron.securitygroups" 2>/dev/null || true); do
    echo "ipset NIPv4${id:0:25}"; echo "ipset NIPv6${id:0:25}"
  done
}

# The iptables chains this cloud's linuxbridge agent left (they outlive it, as the real agent's
# do): the rules that jump to them, then the chains. Chains of other clouds and programs stay.
clear_agent_iptables() {
  local cmd t line chain
  for cmd in iptables ip6tables; do
    for t in filter raw mangle nat; do
      while IFS= read -r line; do
        eval "$cmd -t $t -D ${line#-A }" 2>/dev/null || true
      done < <($cmd -t "$t" -S 2>/dev/null | grep -E "^-A [^ ]+ .*-j $NEUTRON_LB_NAME-" | grep -vE "^-A $NEUTRON_LB_NAME-")
      for chain in $($cmd -t "$t" -S 2>/dev/null | awk -v p="$NEUTRON_LB_NAME-" '$1 == "-N" && index($2, p) == 1 { print $2 }'); do
        $cmd -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $($cmd -t "$t" -S 2>/dev/null | awk -v p="$NEUTRON_LB_NAME-" '$1 == "-N" && index($2, p) == 1 { print $2 }'); do
        $cmd -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

neutron_cleanup() { # neutron_cleanup "$(neutron_kernel_objects)"
  local kind name
  clear_agent_iptables
  while read -r kind name; do
    case $kind in
      link) ip link del "$name" 2>/dev/null || true ;;
      netns) ip netns del "$name" 2>/dev/null || true ;;
      ipset) ipset destroy "$name" 2>/dev/null || true ;;
    esac
  done <<<"$1"
  ip link del "$NEUTRON_PROVIDER" 2>/dev/null || true
  public_link_down
}

# dnsmasq and haproxy (the DHCP namespaces' metadata proxy) daemonize out of the DHCP agent's
# process group: stopped by the PID files under this cloud's state, each checked to be ours.
stop_neutron_children() {
  local f pid
  [ -d "$STATE/neutron/state" ] || return 0
  while IFS= read -r f; do
    pid=$(cat "$f" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || continue
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$STATE/neutron/" || continue
    kill -TERM "$pid" 2>/dev/null || true
  done < <(find "$STATE/neutron/state" \( -name pid -o -name '*.pid' -o -name '*.pid.*' \) -type f 2>/dev/null)
}
