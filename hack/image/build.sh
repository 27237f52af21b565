#!/usr/bin/env bash
# Build the webhook image: `make image` runs this.
#   hack/image/build.sh [TAG...]     TAG defaults to pod-identity-webhook:<version>
# Starts a Docker engine if none answers (hack/image/engine.sh), makes sure the base exists
# (hack/image/base.sh: pulled, or a stand-in where no registry is reachable), and passes the
# host's pip index settings as build arguments, so the build stage reaches the same index.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python3}"
BASE="${PYTHON_IMAGE:-python:3.11-slim}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' webhook/__init__.py)"
[[ -n "$VERSION" ]] || { echo "FAIL: no __version__ in webhook/__init__.py" >&2; exit 1; }
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ $# -eq 0 ]]; then
  set -- "pod-identity-webhook:$VERSION"
fi

hack/image/engine.sh
hack/image/base.sh "$BASE"

# A pip setting from the environment or pip's configuration files; only http(s) indexes, since
# a file:// index on the host does not exist inside the build.
pip_setting() {
  local name="$1" env="$2" value
  value="${!env:-}"
  if [[ -z "$value" ]]; then
    value=$("$PYTHON" -m pip config list 2>/dev/null \
      | sed -n "s/^[a-z]*\.$name='\(.*\)'\$/\1/p" | tail -n 1 || true)
  fi
  local kept=() word
  for word in $value; do
    if [[ "$name" == trusted-host || "$word" == http://* || "$word" == https://* ]]; then
      kept+=("$word")
    fi
  done
  printf '%s' "${kept[*]}"
}

args=(--build-arg "PYTHON_IMAGE=$BASE" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION")
# unset ones stay unset in the build (pip would read an empty index URL as "no index")
for setting in index-url:PIP_INDEX_URL extra-index-url:PIP_EXTRA_INDEX_URL \
  trusted-host:PIP_TRUSTED_HOST; do
  value="$(pip_setting "${setting%%:*}" "${setting#*:}")"
  if [[ -n "$value" ]]; then
    args+=(--build-arg "${setting#*:}=$value")
  fi
done
for tag in "$@"; do
  args+=(--tag "$tag")
done
docker build "${args[@]}" .
