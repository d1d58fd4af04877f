# Sourced by the end-to-end suites on the local cluster (e2e/chart.sh,
# e2e/tls.sh, e2e/cert-manager.sh): where the cluster's state is, the
# pinned chart tools, kubectl, the check helpers of scripts/checks.sh, and
# the operator's version and chart.
# shellcheck shell=bash
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
STATE=${E2E_STATE:-/var/lib/iggy-e2e}
export KUBECONFIG=${KUBECONFIG:-$STATE/admin.kubeconfig}
CHART=$ROOT/charts/iggy-operator
RELEASE=iggy-operator
OPERATOR_NS=iggy-system
EXAMPLES=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}/release/examples

"$ROOT/scripts/tools.sh" install >&2 || exit 1
eval "$("$ROOT/scripts/tools.sh" env)"
KUBECTL=$("$HERE/k8s.sh" bin)/kubectl
kubectl() { "$KUBECTL" "$@"; }
step() { printf '\n\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"
version=$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 | jq -r '.packages[] | select(.name=="iggy-operator") | .version')

# Succeeds when `kubectl get ARGS` answers and lists nothing (an
# unreachable API server is a failure, not an absence).
none() {
  local out
  out=$(kubectl get "$@" -o name --ignore-not-found) || return 1
  [ -z "$out" ] || { echo "still there: $out"; return 1; }
}

# The suite before this one may leave the operator's namespace terminating.
wait_operator_namespace_gone() {
  if [ "$(kubectl get namespace "$OPERATOR_NS" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ]; then
    kubectl wait --for=delete "namespace/$OPERATOR_NS" --timeout=180s >/dev/null
  fi
}

# A namespace $NS with a three-broker IggyCluster $CLUSTER, replication
# factor 3, and `tls:` $1 (YAML flow) when given.
create_cluster() {
  kubectl create namespace "$NS" >/dev/null
  kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: $CLUSTER}
spec:
  replicas: 3
  version: "$version"
  storage: {size: 1Gi}
  replication: {defaultFactor: 3}
  metrics: {monitor: None}
${1:+  tls: $1}
YAML
}
