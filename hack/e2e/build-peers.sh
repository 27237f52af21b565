#!/usr/bin/env bash
# Builds the real peers of the e2e suite into build/e2e/bin/ with the ordinary go client, at the
# versions of hack/e2e/versions.env: etcd, kube-apiserver, kube-controller-manager and kubectl,
# and upstream's webhook at its tag and at the reference commit (tests/upstream, `make bench`).
# A binary already built from the same pins is reused. Prints each binary's version.
# The Go module and build caches are go's own (GOMODCACHE, GOCACHE), outside the checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${E2E_BIN:-$top/build/e2e/bin}
# shellcheck disable=SC1091 # versions.env holds plain assignments only
. "$here/versions.env"
mkdir -p "$bin"

command -v go >/dev/null || { echo "build-peers: the go toolchain is needed (go 1.26)" >&2; exit 1; }

pinned() { # $1 module dir, $2 module path, $3 version: go.mod must say what versions.env says
  local have
  have=$(cd "$1" && go list -m -f '{{.Version}}' "$2")
  if [ "$have" != "$3" ]; then
    echo "build-peers: $1/go.mod has $2 $have but versions.env pins $3; run hack/e2e/pin.sh" >&2
    exit 1
  fi
}

# stamp: what the binaries were built from; equal stamps mean the binaries can be reused. Only
# the KUBERNETES_ and ETCD_ pins count, so a new upstream pin does not rebuild the control plane.
stamp_of() {
  { grep -E '^(KUBERNETES|ETCD)_' "$here/versions.env"; cat "$1/go.mod" "$1/go.sum"; } |
    sha256sum | cut -d' ' -f1
}

build() { # $1 group name, $2 module dir, $3 -o target, rest: go build arguments
  local group=$1 dir=$2 out=$3 stamp
  shift 3
  stamp=$(stamp_of "$dir")
  if [ -f "$bin/.$group.stamp" ] && [ "$(cat "$bin/.$group.stamp")" = "$stamp" ]; then
    echo "build-peers: $group binaries are current (reused)"
    return
  fi
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -o "$out" "$@")
  echo "$stamp" >"$bin/.$group.stamp"
  echo "build-peers: built $group in $((SECONDS - start)) s"
}

pinned "$here/kube" k8s.io/kubernetes "$KUBERNETES_VERSION"
pinned "$here/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"

minor=${KUBERNETES_VERSION#v1.}
minor=${minor%%.*}
version_pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $version_pkg.gitVersion=$KUBERNETES_VERSION -X $version_pkg.gitMajor=1"
kube_ldflags+=" -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean"
kube_ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"

build etcd "$here/etcd" "$bin/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3
build kube "$here/kube" "$bin/" -ldflags "$kube_ldflags" k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl

# upstream's webhook: `go install MODULE@VERSION` into a folder of its own, then renamed.
# $1 group name, $2 version, $3 binary name. A pseudo-version the module proxy refuses is built
# from UPSTREAM_SOURCE (a clone of upstream's repository) at its commit, when that is given.
upstream() {
  local group=$1 version=$2 name=$3 stamp start=$SECONDS tmp
  stamp=$(printf '%s@%s\n' "$UPSTREAM_MODULE" "$version" | sha256sum | cut -d' ' -f1)
  if [ -x "$bin/$name" ] && [ -f "$bin/.$group.stamp" ] && [ "$(cat "$bin/.$group.stamp")" = "$stamp" ]; then
    echo "build-peers: $name is current (reused)"
    return 0
  fi
  tmp=$(mktemp -d)
  if GOBIN="$tmp" go install -trimpath "$UPSTREAM_MODULE@$version"; then
    mv "$tmp/amazon-eks-pod-identity-webhook" "$bin/$name"
  elif [ -n "${UPSTREAM_SOURCE:-}" ] && git -C "$UPSTREAM_SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
    local commit=${version##*-}
    echo "build-peers: the module proxy does not serve $version; building commit $commit of $UPSTREAM_SOURCE"
    mkdir "$tmp/src"
    git -C "$UPSTREAM_SOURCE" archive "$commit" | tar -x -C "$tmp/src"
    (cd "$tmp/src" && go build -trimpath -o "$bin/$name" .)
  else
    rm -rf "$tmp"
    echo "build-peers: $UPSTREAM_MODULE@$version is not served by the module proxy and no" \
      "UPSTREAM_SOURCE clone was given: $name left out (tests/upstream and make bench say so)" >&2
    return 1
  fi
  rm -rf "$tmp"
  echo "$stamp" >"$bin/.$group.stamp"
  echo "build-peers: built $name in $((SECONDS - start)) s"
}

upstream upstream "$UPSTREAM_VERSION" "$UPSTREAM_NAME"
upstream upstream-reference "$UPSTREAM_REFERENCE_VERSION" "$UPSTREAM_REFERENCE_NAME" || true

# awk reads to the end: head would close the pipe early and, with pipefail, fail on SIGPIPE
"$bin/etcd" --version | awk 'NR == 1'
"$bin/kube-apiserver" --version
"$bin/kube-controller-manager" --version
"$bin/kubectl" version --client 2>/dev/null | awk 'NR == 1'
for name in "$UPSTREAM_NAME" "$UPSTREAM_REFERENCE_NAME"; do
  # upstream's --version prints what its ldflags set (v0.1.0 for a plain build): the pin says more
  [ -x "$bin/$name" ] && echo "$name: $("$bin/$name" --version 2>&1 | awk 'NR == 1')" \
    "(built from $UPSTREAM_MODULE $( [ "$name" = "$UPSTREAM_NAME" ] && echo "$UPSTREAM_VERSION" || echo "$UPSTREAM_REFERENCE_VERSION"))"
done
true
