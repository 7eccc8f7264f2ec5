#!/usr/bin/env bash
# One command from a fresh clone, as root on Debian 12: installs what is missing (Debian packages,
# npm dependencies), builds, starts RabbitMQ, dockerd and a registry on loopback, builds and pushes
# the test image, starts the Berth services and boots a demo instance from that image.
#   BERTH_SETUP_NO_DEMO=1  stop after the services are up (what CI uses before the tests)
#   BERTH_SETUP_NO_CLOUD=1 skip the test OpenStack cloud (keystone, placement, glance, nova and
#                          neutron on loopback) that the nova-mode tests join; everything else
#                          works without it
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "setup: run as root (it installs packages and starts dockerd)" >&2; exit 1; }
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.stdout.write(String(a>20||(a===20&&b>=19)))' 2>/dev/null || echo false)
[ "$node_ok" = true ] || { echo "setup: Node.js >= 20.19 is required (found: $(node --version 2>/dev/null || echo none))" >&2; exit 1; }

say "system packages and services (RabbitMQ, dockerd, registry on loopback)"
bash tools/dev/services.sh start

say "npm dependencies"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "up to date"
fi

say "build"
npm run --silent build

say "test image from Debian's busybox-static"
bash tools/dev/build-test-image.sh

if [ "${BERTH_SETUP_NO_CLOUD:-}" != 1 ]; then
  say "test OpenStack cloud for nova mode (Debian's Zed: keystone, placement, glance, nova, neutron; loopback only)"
  bash tools/dev/cloud.sh install
  bash tools/dev/cloud.sh start
  say "Tempest (Debian's tempest 33), run against that cloud by tools/dev/tempest.sh"
  bash tools/dev/tempest.sh install
fi

ln -sf "$PWD/tools/berth" /usr/local/bin/berth
[ "${BERTH_SETUP_NO_DEMO:-}" = 1 ] && exit 0

say "Berth services"
tools/berth dev up

say "demo instance"
tools/berth server create --image "docker://127.0.0.1:${BERTH_REGISTRY_PORT:-5000}/berth/busybox:latest" \
  --flavor-vcpus 1 --flavor-ram 128 --name demo --wait -f json > /tmp/berth-demo.json
uuid=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync("/tmp/berth-demo.json","utf8")).uuid)')
tools/berth server show "$uuid"
echo
echo "Its container (labelled with the instance uuid):"
/usr/bin/docker ps --filter "label=org.openstack.berth.instance=$uuid" --format 'table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}'
echo
echo "Console:"
tools/berth server console-log "$uuid"
echo
echo "Berth is running. Try: berth server list | berth server console-log $uuid | berth server delete $uuid | berth down"
