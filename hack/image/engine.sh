#!/usr/bin/env bash
# Make sure a Docker engine answers: use the running one, else start Debian's dockerd (as root,
# installing docker.io when it is missing). Exits non-zero, saying why, when none can run; the
# image tests then skip with that reason.
#   hack/image/engine.sh
set -euo pipefail

WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"
LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'no Docker engine: %s\n' "$*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
  exit 0
fi
[[ "$(id -u)" == 0 ]] || fail "none is running and starting dockerd needs root"
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; } \
    || fail "docker.io could not be installed"
fi
command -v docker >/dev/null 2>&1 || fail "the docker client is not installed"

log "starting dockerd (log: $LOG)"
nohup dockerd >"$LOG" 2>&1 &
for _ in $(seq 1 "$WAIT_SECONDS"); do
  if docker info >/dev/null 2>&1; then
    log "dockerd is up"
    exit 0
  fi
  sleep 1
done
fail "dockerd did not answer within ${WAIT_SECONDS}s; last lines of $LOG: $(tail -n 5 "$LOG")"
