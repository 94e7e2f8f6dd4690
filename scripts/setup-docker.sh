#!/usr/bin/env bash
# Make a Docker engine and the k2eval sandbox images available; safe to run again.
#  1. apt-get install docker.io, debootstrap, and g++ and libseccomp-dev (to build the DMOJ
#     wheel of the ojbench image) when missing;
#  2. start `dockerd --bridge=none --iptables=false` in the background when none answers,
#     and wait for its socket;
#  3. build every sandbox image (`k2eval sandbox build --offline-base`): images whose
#     content-versioned tag exists are reused, so a second run builds nothing.
# Env: PYTHON (default python3), K2EVAL_BASE_FROM_REGISTRY=1 to pull debian instead of
# bootstrapping the base, K2EVAL_DEBIAN_MIRROR to override apt's mirror.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
cd "$(dirname "$0")/.."

engine_answers() {
    if command -v docker >/dev/null 2>&1; then
        docker version --format '{{.Server.Version}}' >/dev/null 2>&1
    else
        "$PYTHON" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1
    fi
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
# The ojbench image: its DMOJ wheel is built on the host (a C++ compiler, libseccomp headers).
command -v g++ >/dev/null 2>&1 || missing+=(g++)
[ -e /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup-docker: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

socket_path=/var/run/docker.sock
if engine_answers; then
    echo "setup-docker: Docker engine already running"
elif [ -S "$socket_path" ] && [ ! -w "$socket_path" ]; then
    echo "setup-docker: permission denied on $socket_path: add yourself to the docker group" \
         "(sudo usermod -aG docker \$USER, then log in again) or run as root" >&2
    exit 1
else
    echo "setup-docker: starting dockerd --bridge=none --iptables=false"
    $SUDO sh -c 'nohup dockerd --bridge=none --iptables=false >/var/log/k2eval-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        if engine_answers; then break; fi
        sleep 1
    done
    if ! engine_answers; then
        echo "setup-docker: dockerd did not answer within 60s; see /var/log/k2eval-dockerd.log" >&2
        exit 1
    fi
    echo "setup-docker: Docker engine is up"
fi

base_flag="--offline-base"
if [ "${K2EVAL_BASE_FROM_REGISTRY:-0}" = "1" ]; then base_flag=""; fi
"$PYTHON" -m k2eval.cli sandbox build $base_flag
