#!/usr/bin/env bash
# Builds Berth's test image from Debian's busybox-static (no internet needed) and pushes it to the
# local registry as 127.0.0.1:$BERTH_REGISTRY_PORT/berth/busybox:latest. Idempotent.
set -euo pipefail
PORT=${BERTH_REGISTRY_PORT:-5000}
REF=127.0.0.1:$PORT/berth/busybox:latest
DOCKER=/usr/bin/docker
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || { echo "build-test-image: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
cp "$BUSYBOX" "$ctx/busybox"
# A tiny "guest OS": PID 1 answers SIGTERM at once, prints a boot log of a few lines to the
# console, as a real guest's boot does (Tempest reads a whole console log and expects more than
# three lines in it).
cat > "$ctx/init" <<'SH'
#!/bin/sh
echo "berth-guest: starting on $(uname -sm)"
echo "berth-guest: booted $(hostname)"
[ -f /run/berth/config/openstack/latest/meta_data.json ] && echo "berth-guest: config drive present"
echo "berth-guest: $(busybox | head -n 1)"
echo "berth-guest: ready"
trap 'echo "berth-guest: shutting down"; exit 0' TERM INT
while :; do sleep 1 & wait $!; done
SH
cat > "$ctx/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/etc", "/run", "/var/log"]
COPY init /sbin/init
RUN ["/bin/busybox", "chmod", "755", "/sbin/init"]
LABEL org.opencontainers.image.title="berth test guest" org.opencontainers.image.source="busybox-static"
CMD ["/sbin/init"]
DF
DOCKER_BUILDKIT=0 $DOCKER build -q -t "$REF" "$ctx" >/dev/null
$DOCKER push -q "$REF" >/dev/null
echo "$REF"
