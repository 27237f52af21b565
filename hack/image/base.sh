#!/usr/bin/env bash
# The image's base, python:3.11-slim, for machines that cannot pull it (no registry reachable).
#   hack/image/base.sh [TAG]        TAG defaults to python:3.11-slim
# Does nothing when TAG is already in the engine or can be pulled. Otherwise builds a stand-in
# from Debian bookworm (debootstrap, the machine's own Debian mirror) with Python 3.11, venv and
# pip, and the host's extra trusted CAs so that pip works through a TLS-intercepting proxy, then
# `docker import`s it under TAG. Needs root (debootstrap) and a running Docker engine.
set -euo pipefail

TAG="${1:-python:3.11-slim}"
PULL_TIMEOUT="${PULL_TIMEOUT:-30}"

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG is in the engine already"
  exit 0
fi
if timeout "$PULL_TIMEOUT" docker pull -q "$TAG" >/dev/null 2>&1; then
  log "pulled $TAG"
  exit 0
fi

# The first Debian archive apt uses here (deb822 or one-line sources), else the public one.
mirror() {
  local uri
  uri=$(sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  if [[ -z "$uri" ]]; then
    uri=$(sed -n 's|^deb  *\(\[[^]]*\]  *\)\{0,1\}\(http[^ ]*/debian\)/* .*|\2|p' \
      /etc/apt/sources.list 2>/dev/null | head -n 1)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

[[ "$(id -u)" == 0 ]] || fail "building the stand-in base needs root (debootstrap)"
command -v debootstrap >/dev/null 2>&1 || {
  log "installing debootstrap"
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
}

ROOTFS="$(mktemp -d)"
cleanup() { rm -rf "$ROOTFS"; }
trap cleanup EXIT

MIRROR="$(mirror)"
log "$TAG cannot be pulled: building a stand-in from Debian bookworm ($MIRROR)"
debootstrap --variant=minbase --include=python3.11,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" "$MIRROR" >/dev/null

# As the official image: `python` on PATH, pip may install into the system interpreter
# (no PEP 668 marker), and no apt lists, docs or caches.
ln -sf python3 "$ROOTFS/usr/bin/python"
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
# pip reaches the index through whatever TLS proxy the host trusts
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1
fi
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$TAG" >/dev/null
log "imported $TAG"
