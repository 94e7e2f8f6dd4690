#!/usr/bin/env bash
# Install everything the test suite needs (Python packages, a Docker engine and the sandbox
# images, headless Chromium) and run the whole suite with Docker required.
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

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "Headless Chromium (browser tests of the HTML reports)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "PostgreSQL server (the history and cache tests start a throwaway cluster)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

say "Docker engine and sandbox images"
bash scripts/setup-docker.sh

say "DMOJ judge on the host (the reference the ojbench sandbox is checked against)"
if ! command -v pypy3 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 >/dev/null
fi
DMOJ_REDIST=1 $PY -m pip install --quiet --disable-pip-version-check "dmoj==4.1.0"

say "Test suite"
export K2EVAL_REQUIRE_DOCKER=1
export K2EVAL_REQUIRE_POSTGRES=${K2EVAL_REQUIRE_POSTGRES:-1}
export K2EVAL_REQUIRE_BROWSER=${K2EVAL_REQUIRE_BROWSER:-1}
exec $PY -m pytest -q -p no:cacheprovider "$@"
