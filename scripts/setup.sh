#!/usr/bin/env bash
# Idempotent host set-up for evt (Debian, as root): system packages, tracefs, dockerd,
# the Python virtualenv, and the local Debian base image for machines without a registry.
# Used by `make setup`, and so by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(docker.io bpftrace bpftool libbpf-tools strace inotify-tools mmdebstrap iputils-ping auditd
          netcat-openbsd sudo util-linux procps coreutils python3-venv ca-certificates
          qemu-system-x86 cpio)  # qemu and cpio: `evt verify --kernel` (a VM with a stock kernel)
BASE_IMAGE="${EVT_BASE_IMAGE:-evt-base:bookworm}"
VENV="${EVT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup must run as root (it installs packages, mounts tracefs and starts dockerd)" >&2
  exit 2
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d /sys/kernel/tracing/events ]; then
  log "mounting tracefs at /sys/kernel/tracing"
  mount -t tracefs tracefs /sys/kernel/tracing
fi

# bpftrace and BPF_PROG_LOAD want locked memory
ulimit -l unlimited 2>/dev/null || true

EVT_VENV="$VENV" PYTHON="$PYTHON" bash scripts/venv.sh

docker_ready() { "$VENV/bin/python" -c 'import docker; docker.from_env(timeout=5).ping()' 2>/dev/null; }
if ! docker_ready; then
  log "starting dockerd (log: /var/log/evt-dockerd.log)"
  nohup dockerd > /var/log/evt-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker_ready && break; sleep 0.5; done
  docker_ready || { echo "dockerd did not start; see /var/log/evt-dockerd.log" >&2; exit 1; }
fi

if ! "$VENV/bin/python" -c "import docker,sys; docker.from_env().images.get('$BASE_IMAGE')" 2>/dev/null; then
  log "building base image $BASE_IMAGE from Debian packages (mmdebstrap + docker import)"
  "$VENV/bin/evt" image base --tag "$BASE_IMAGE"
fi
log "ready"
