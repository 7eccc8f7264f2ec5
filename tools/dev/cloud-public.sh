# shellcheck shell=bash
# The external network of the test cloud's Neutron (sourced by tools/dev/cloud-neutron.sh; not run
# alone): routers (the router service plugin and the L3 agent, legacy mode) take their gateway on
# a flat network `public`, and floating IPs come from its subnet. Its physical network is one end
# of a veth pair this script makes (this kernel has no dummy links); the host's end holds the
# subnet's gateway address, so the host reaches every floating IP (and routers' SNAT leaves
# through it). Per cloud (BERTH_CLOUD_PORT_OFFSET): its own pair and /24, 172.24.(4 + offset/10).0/24,
# apart from the tenant networks (10.77-10.79.x) and Docker's bridges (172.17, 172.29, 172.30).
# A stop deletes the pair; router namespaces are Neutron's (a reset deletes them).

NEUTRON_PUBLIC_PHYSNET=external
NEUTRON_PUBLIC_LINK=bcpe${PORT_OFFSET}a NEUTRON_PUBLIC_HOST_LINK=bcpe${PORT_OFFSET}b
NEUTRON_PUBLIC_NET=public
NEUTRON_PUBLIC_PREFIX=172.24.$((4 + PORT_OFFSET / 10))
NEUTRON_PUBLIC_CIDR=$NEUTRON_PUBLIC_PREFIX.0/24 NEUTRON_PUBLIC_GATEWAY=$NEUTRON_PUBLIC_PREFIX.1

write_l3_config() { # write_l3_config DIR
  cat > "$1/l3_agent.ini" <<EOF
# Legacy (centralised) routers in qrouter-<id> namespaces on this host; their ports are taps on
# the linuxbridge agent's bridges. Floating IPs are DNAT/SNAT rules in the namespace.
[DEFAULT]
interface_driver = linuxbridge
EOF
}

# The veth pair: the agent's end goes into the public network's bridge, the host's end holds the
# gateway address. Idempotent.
public_link() {
  ip link show "$NEUTRON_PUBLIC_LINK" >/dev/null 2>&1 \
    || ip link add "$NEUTRON_PUBLIC_LINK" type veth peer name "$NEUTRON_PUBLIC_HOST_LINK"
  ip addr replace "$NEUTRON_PUBLIC_GATEWAY/24" dev "$NEUTRON_PUBLIC_HOST_LINK"
  ip link set "$NEUTRON_PUBLIC_LINK" up
  ip link set "$NEUTRON_PUBLIC_HOST_LINK" up
}

public_link_down() { ip link del "$NEUTRON_PUBLIC_LINK" 2>/dev/null || true; }

# Once per state: the external network and its subnet (no DHCP; the host is the gateway), then the
# variables tests and tools/dev/tempest.sh find it by in cloud.env.
public_network() {
  if [ ! -f "$STATE/neutron/.public" ]; then
    local out
    out=$(printf '%s\n' \
      "network create --external --provider-network-type flat --provider-physical-network $NEUTRON_PUBLIC_PHYSNET $NEUTRON_PUBLIC_NET" \
      "subnet create --network $NEUTRON_PUBLIC_NET --subnet-range $NEUTRON_PUBLIC_CIDR --gateway $NEUTRON_PUBLIC_GATEWAY --no-dhcp $NEUTRON_PUBLIC_NET" \
      'subnet list -f value -c Name -c Subnet' | openstack_batch neutron-public)
    grep -q "^$NEUTRON_PUBLIC_NET $NEUTRON_PUBLIC_CIDR\$" <<<"$out" || { log "the external network was not created"; log_tail neutron-public; return 1; }
    touch "$STATE/neutron/.public"
  fi
  grep -q '^export BERTH_CLOUD_PUBLIC_NET=' "$STATE/cloud.env" && return 0
  cat >> "$STATE/cloud.env" <<EOF
export BERTH_CLOUD_PUBLIC_NET=$NEUTRON_PUBLIC_NET
export BERTH_CLOUD_PUBLIC_CIDR=$NEUTRON_PUBLIC_CIDR
export BERTH_CLOUD_PUBLIC_GATEWAY=$NEUTRON_PUBLIC_GATEWAY
EOF
}
