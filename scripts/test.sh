#!/usr/bin/env bash
# Install everything the test suite needs (Python packages, a Docker engine and the sandbox
# images, headless Chromium, PostgreSQL, the DMOJ judge) and run the whole suite with Docker
# required.
# Idempotent: a second run reuses the engine, the images and the installed packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
say() { printf '\n== %s\n' "$*"; }

say "Python packages"
# The CPU build of PyTorch first, so that nothing pulls a multi-GB CUDA build.
$PY -m pip install --quiet --disable-pip-version-check "torch==2.13.0" \
  || $PY -m pip install --quiet --disable-pip-version-check "torch>=2.3"
$PY -m pip install --quiet --disable-pip-version-check -e ".[test]"

# System packages, in one apt-get run: headless Chromium (browser tests of the HTML reports),
# a PostgreSQL server (the history and cache tests start a throwaway cluster) and PyPy (the
# DMOJ judge on the host, the reference the ojbench sandbox is checked against).
apt=()
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
  || apt+=(chromium chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt+=(postgresql)
command -v pypy3 >/dev/null 2>&1 || apt+=(pypy3)
if [ "${#apt[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "System packages: ${apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt[@]}" >/dev/null
fi

say "Docker engine and sandbox images"
bash scripts/setup-docker.sh

say "DMOJ judge on the host (the reference the ojbench sandbox is checked against)"
DMOJ_REDIST=1 $PY -m pip install --quiet --disable-pip-version-check "dmoj==4.1.0"

say "Test suite"
export K2EVAL_REQUIRE_DOCKER=1
export K2EVAL_REQUIRE_POSTGRES=${K2EVAL_REQUIRE_POSTGRES:-1}
export K2EVAL_REQUIRE_BROWSER=${K2EVAL_REQUIRE_BROWSER:-1}
exec $PY -m pytest -q -p no:cacheprovider "$@"
