#!/usr/bin/env bash
# Static checks of charts/iggy-operator, no cluster needed (run by make test):
#   - the chart's crds/ are the generated ones
#   - helm lint --strict, with the defaults and every ci/*-values.yaml
#   - helm template of each of those, validated by kubeconform -strict against
#     schemas built offline from Kubernetes' own OpenAPI, our CRDs and the
#     Prometheus Operator's CRDs; examples/ too
#   - every tests/invalid-values/*.yaml is rejected by values.schema.json
#   - promtool: the alert rules parse and their unit tests pass; every
#     dashboard expression parses; every metric they use is exported
# Prints "chart-check: N passed, M failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHART=$ROOT/charts/iggy-operator
KUBE_VERSION=1.33.13
cd "$ROOT"
"$ROOT/scripts/tools.sh" install || exit 1
eval "$("$ROOT/scripts/tools.sh" env)"

# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The schemas: Kubernetes' kinds from the swagger.json of the same
# k8s.io/kubernetes module the local cluster is built from.
# (`go mod download` fetches it on a fresh machine; `go list -m` alone
# answers an empty directory until something else has.)
k8s_src=$(cd "$ROOT/e2e/k8s" && GOWORK=off GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes |
  python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))')
[ -n "$k8s_src" ] && [ -f "$k8s_src/api/openapi-spec/swagger.json" ] ||
  { echo "chart-check: cannot find k8s.io/kubernetes' swagger.json in the Go module cache" >&2; exit 1; }
monitoring_crds=("$MONITORING_CRDS"/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml)
schemas=$tmp/schemas
/usr/bin/python3 "$ROOT/scripts/k8s-json-schemas.py" "$schemas" "$k8s_src/api/openapi-spec/swagger.json" \
  "$ROOT"/crds/*.yaml "${monitoring_crds[@]}" || exit 1
kubeconform_strict() {
  kubeconform -strict -summary -kubernetes-version "$KUBE_VERSION" \
    -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}

check "charts/iggy-operator/crds is a copy of crds/" diff -r "$ROOT/crds" "$CHART/crds"

# kubeconform must reject what it should, or every "ok" below means nothing.
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i, imagePullPolcy: Always}]\n' > "$tmp/typo.yaml"
printf 'apiVersion: iggy.rs/v1alpha1\nkind: IggyCluster\nmetadata: {name: x}\nspec: {replicas: "3"}\n' > "$tmp/bad-cluster.yaml"
for bad in typo bad-cluster; do
  if kubeconform_strict "$tmp/$bad.yaml" >/dev/null 2>&1; then
    not_ok "kubeconform rejects $bad.yaml"
  else
    ok "kubeconform rejects $bad.yaml"
  fi
done

for values in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$values")
  check "helm lint --strict -f $name" helm lint --strict --kube-version "$KUBE_VERSION" "$CHART" -f "$values"
  if helm template iggy-operator "$CHART" -n iggy-system --kube-version "$KUBE_VERSION" --include-crds \
       -f "$values" > "$tmp/$name" 2> "$tmp/$name.err"; then
    check "helm template -f $name | kubeconform -strict" kubeconform_strict "$tmp/$name"
  else
    not_ok "helm template -f $name"; sed 's/^/    /' "$tmp/$name.err"
  fi
done
check "examples/ pass kubeconform -strict" kubeconform_strict "$ROOT/examples"

# What the combinations must render (beyond being valid).
expect() { # FILE DESCRIPTION PATTERN: the rendered FILE contains PATTERN
  if grep -qE -- "$3" "$tmp/$1"; then ok "$1: $2"; else not_ok "$1: $2 (no match for $3)"; fi
}
refuse() { # FILE DESCRIPTION PATTERN: the rendered FILE does not contain PATTERN
  if grep -qE -- "$3" "$tmp/$1"; then not_ok "$1: $2 (found $3)"; else ok "$1: $2"; fi
}
expect default-values.yaml "cluster-wide ClusterRole" '^kind: ClusterRole$'
expect default-values.yaml "leader election Role" 'name: iggy-operator-leader-election'
expect default-values.yaml "read-only root filesystem" 'readOnlyRootFilesystem: true'
cluster_roles=$(grep -A2 -E '^kind: ClusterRole$' "$tmp/namespaced-values.yaml" | grep -oE 'name: .*' | tr '\n' ' ')
if [ "$cluster_roles" = "name: iggy-operator-crds name: iggy-operator-storage " ]; then
  ok "namespaced-values.yaml: the only ClusterRoles are for the CRDs and reading StorageClasses"
else
  not_ok "namespaced-values.yaml: the only ClusterRoles are for the CRDs and reading StorageClasses (found: $cluster_roles)"
fi
expect namespaced-values.yaml "a Role in team-b" 'namespace: team-b'
expect namespaced-values.yaml "the operator watches the two namespaces" 'watch-namespaces=team-a,team-b'
expect monitoring-values.yaml "a ServiceMonitor" '^kind: ServiceMonitor'
expect monitoring-values.yaml "a PrometheusRule in monitoring" '^kind: PrometheusRule'
expect monitoring-values.yaml "the dashboard ConfigMap for the sidecar" 'grafana_dashboard: "1"'
refuse minimal-values.yaml "no RBAC objects" 'kind: (Cluster)?Role'
expect minimal-values.yaml "no leader election" -- '--no-leader-election'
expect minimal-values.yaml "Recreate without a Lease" 'type: Recreate'
expect minimal-values.yaml "CRDs left alone" -- '--no-crd-install'
expect scheduling-values.yaml "the pinned image" 'registry.example.com/iggy/iggy-operator:0.1.0'

if out=$(helm template t "$CHART" --kube-version "$KUBE_VERSION" --set replicaCount=2 --set leaderElection.enabled=false 2>&1); then
  not_ok "two replicas without leader election are refused"
elif grep -q "needs leaderElection.enabled" <<<"$out"; then
  ok "two replicas without leader election are refused"
else
  not_ok "two replicas without leader election: failed for another reason"; echo "$out" | sed 's/^/    /'
fi

for f in "$CHART"/tests/invalid-values/*.yaml; do
  name=$(basename "$f")
  if out=$(helm template t "$CHART" --kube-version "$KUBE_VERSION" -f "$f" 2>&1); then
    not_ok "values.schema.json rejects $name (it was accepted)"
  elif grep -q "values don't meet the specifications of the schema" <<<"$out"; then
    ok "values.schema.json rejects $name"
  else
    not_ok "values.schema.json rejects $name (failed for another reason)"; echo "$out" | sed 's/^/    /'
  fi
done

check "promtool check rules" promtool check rules "$CHART/files/prometheus-rules.yaml"
check "promtool test rules" promtool test rules "$CHART/tests/prometheus-rules_test.yaml"
check "the dashboard is JSON" jq empty "$CHART"/dashboards/*.json
# Every dashboard expression parses: as recording rules for promtool, with
# Grafana's interval variables replaced.
jq '[.. | objects | select(has("expr")) | .expr] | to_entries
    | {groups: [{name: "dashboard", rules: map({record: "dashboard:expr_\(.key)",
        expr: (.value | gsub("\\$__rate_interval|\\$__interval|\\$__range"; "5m"))})}]}' \
  "$CHART"/dashboards/*.json > "$tmp/dashboard-rules.json"
check "every dashboard expression parses" promtool check rules "$tmp/dashboard-rules.json"
# Every iggy_* metric the rules and the dashboard use is exported.
missing=""
for metric in $(grep -ohE 'iggy_(broker|operator)_[a-z_]+' "$CHART"/files/*.yaml "$CHART"/dashboards/*.json | sort -u); do
  base=${metric%_bucket}; base=${base%_count}; base=${base%_sum}
  grep -rqF "\"$base\"" "$ROOT/broker/src" "$ROOT/operator/src" || missing="$missing $metric"
done
if [ -z "$missing" ]; then ok "every metric in the rules and the dashboard is exported"; else not_ok "metrics not exported:$missing"; fi

summary chart-check
