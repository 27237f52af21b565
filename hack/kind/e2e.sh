#!/usr/bin/env bash
# End-to-end test in kind: needs docker (with a running engine), kind (v0.26+), kubectl,
# openssl and python3.
#   hack/kind/e2e.sh            create the cluster, deploy, assert, delete the cluster
#   KEEP_CLUSTER=1 hack/kind/e2e.sh   leave the cluster running afterwards
# It deploys a scratch copy of manifests/ and hack/kind/ with certificates of its own, so the
# working tree (manifests/overlays/selfsigned/certs included) is never written. On failure the
# cluster's events, the webhook's logs and `kind export logs` land in $LOGS.
set -euo pipefail

cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER_NAME:-pod-identity-webhook}"
IMAGE="pod-identity-webhook:e2e"
KEYS="hack/kind/.keys"
CERTS="manifests/overlays/selfsigned/certs"
WEBHOOK_NS="pod-identity-webhook"
ROLE_ARN="arn:aws:iam::111122223333:role/s3-reader"
TOKEN_DIR="/var/run/secrets/eks.amazonaws.com/serviceaccount"
ISSUER="https://oidc.pod-identity-webhook.invalid/kind"
LOGS="${E2E_LOGS:-build/e2e-logs}"

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
if [[ -x .venv/bin/pod-identity-webhook ]]; then
  WEBHOOK_CLI=.venv/bin/pod-identity-webhook
elif command -v pod-identity-webhook >/dev/null 2>&1; then
  WEBHOOK_CLI=pod-identity-webhook
else
  fail "pod-identity-webhook is not installed (run make .venv/.installed, as docs/deploy.md says)"
fi

WORK="$(mktemp -d)"
DEPLOY="$WORK/deploy"
collect_logs() {
  log "collecting events and logs in $LOGS"
  mkdir -p "$LOGS"
  kubectl get events --all-namespaces --sort-by=.lastTimestamp >"$LOGS/events.txt" 2>&1 || true
  kubectl -n "$WEBHOOK_NS" describe deployment,pods >"$LOGS/webhook-describe.txt" 2>&1 || true
  kubectl -n "$WEBHOOK_NS" logs deployment/pod-identity-webhook --all-containers --prefix \
    --tail=-1 >"$LOGS/webhook.log" 2>&1 || true
  kubectl -n e2e get pods -o yaml >"$LOGS/e2e-pods.yaml" 2>&1 || true
  kind export logs "$LOGS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
}
cleanup() {
  local status=$?
  if [[ "$status" != 0 ]]; then
    collect_logs
  fi
  rm -rf "$WORK"
  if [[ "${KEEP_CLUSTER:-0}" != "1" ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

log "service-account signing key pair in $KEYS"
mkdir -p "$KEYS"
if [[ ! -f "$KEYS/sa-signer.key" ]]; then
  openssl genrsa -out "$KEYS/sa-signer.key" 2048
  openssl rsa -in "$KEYS/sa-signer.key" -pubout -out "$KEYS/sa-signer.pub"
fi

log "kind cluster $CLUSTER"
# the config names the key directory relative to the repository; give kind an absolute path
CONFIG="$WORK/cluster.yaml"
sed "s|hostPath: $KEYS\$|hostPath: $PWD/$KEYS|" hack/kind/cluster.yaml >"$CONFIG"
grep -q "hostPath: $PWD/$KEYS\$" "$CONFIG" || fail "hack/kind/cluster.yaml does not mount $KEYS"
kind create cluster --name "$CLUSTER" --config "$CONFIG" --wait 180s

log "image $IMAGE"
hack/image/build.sh "$IMAGE"
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "serving certificate in a scratch copy of the manifests ($DEPLOY)"
mkdir -p "$DEPLOY/hack"
cp -R manifests "$DEPLOY/manifests"
cp -R hack/kind "$DEPLOY/hack/kind"
rm -rf "${DEPLOY:?}/$CERTS" "${DEPLOY:?}/$KEYS"
"$WEBHOOK_CLI" certs --out "$DEPLOY/$CERTS" --service pod-identity-webhook --namespace "$WEBHOOK_NS" >/dev/null

log "deploy (selfsigned overlay with the Fargate component, via hack/kind)"
kubectl apply -k "$DEPLOY/hack/kind"
kubectl -n "$WEBHOOK_NS" rollout status deployment/pod-identity-webhook --timeout=180s

log "annotated ServiceAccount"
kubectl apply -f hack/kind/workload.yaml

# The webhooks fail open (Ignore): wait until a server-side dry run shows the mutation, so
# the real pods are not admitted while the Service endpoints are still being wired.
log "waiting for the webhook to mutate"
for attempt in $(seq 1 30); do
  role=$(kubectl create --dry-run=server -f hack/kind/pod-irsa.yaml \
    -o jsonpath='{.spec.containers[0].env[?(@.name=="AWS_ROLE_ARN")].value}' 2>/dev/null || true)
  [[ "$role" == "$ROLE_ARN" ]] && break
  [[ "$attempt" == 30 ]] && fail "the webhook did not mutate a dry-run pod within 60s"
  sleep 2
done

log "pods"
kubectl apply -f hack/kind/pod-irsa.yaml -f hack/kind/pod-fargate.yaml

expect() {
  local what="$1" got="$2" want="$3"
  [[ "$got" == "$want" ]] || fail "$what: got '$got', want '$want'"
  log "ok: $what = $want"
}
irsa() { kubectl -n e2e get pod irsa -o jsonpath="$1"; }
fargate() { kubectl -n e2e get pod fargate -o jsonpath="$1"; }

expect "AWS_ROLE_ARN" \
  "$(irsa '{.spec.containers[0].env[?(@.name=="AWS_ROLE_ARN")].value}')" "$ROLE_ARN"
expect "AWS_WEB_IDENTITY_TOKEN_FILE" \
  "$(irsa '{.spec.containers[0].env[?(@.name=="AWS_WEB_IDENTITY_TOKEN_FILE")].value}')" "$TOKEN_DIR/token"
expect "AWS_STS_REGIONAL_ENDPOINTS" \
  "$(irsa '{.spec.containers[0].env[?(@.name=="AWS_STS_REGIONAL_ENDPOINTS")].value}')" "regional"
expect "token mount" \
  "$(irsa '{.spec.containers[0].volumeMounts[?(@.name=="aws-iam-token")].mountPath}')" "$TOKEN_DIR"
expect "token volume audience" \
  "$(irsa '{.spec.volumes[?(@.name=="aws-iam-token")].projected.sources[0].serviceAccountToken.audience}')" \
  "sts.amazonaws.com"
expect "token volume path" \
  "$(irsa '{.spec.volumes[?(@.name=="aws-iam-token")].projected.sources[0].serviceAccountToken.path}')" \
  "token"
expect "Fargate schedulerName" "$(fargate '{.spec.schedulerName}')" "fargate-scheduler"
expect "Fargate profile label" \
  "$(fargate '{.metadata.labels.eks\.amazonaws\.com/fargate-profile}')" "e2e"
log "the token kube-apiserver issues to the pod: issuer, kid and signature as AWS STS checks them"
# the same TokenRequest kubelet makes for the projected volume, bound to the pod
kubectl -n e2e create token s3-reader --audience sts.amazonaws.com \
  --bound-object-kind Pod --bound-object-name irsa --duration 600s >"$WORK/token"
"$WEBHOOK_CLI" oidc jwks --public-key "$KEYS/sa-signer.pub" >"$WORK/keys.json"
python3 hack/kind/check-token.py "$WORK/token" "$WORK/keys.json" "$KEYS/sa-signer.pub" \
  "$ISSUER" "system:serviceaccount:e2e:s3-reader" irsa \
  || fail "the pod's token would not pass AWS STS's checks"
log "ok: iss, kid (in oidc jwks) and signature"

expect "webhook pods left alone" \
  "$(kubectl -n "$WEBHOOK_NS" get pods -l app.kubernetes.io/name=pod-identity-webhook \
    -o jsonpath='{.items[*].spec.volumes[?(@.name=="aws-iam-token")].name}')" ""

log "e2e passed"
