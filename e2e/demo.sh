#!/usr/bin/env bash
# `make demo`: a local Kubernetes (or the cluster in $KUBECONFIG), the
# operator installed with its Helm chart, a three-broker IggyCluster — one
# cluster: a stream created through one connection is listed through others
# that reach other brokers — and messages produced and consumed through the
# cluster's client Service with the official iggy SDK; a broker pod deleted
# mid-stream while a producer keeps going, and every acknowledged message
# read back once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
NS=iggy-demo
CLUSTER=iggy
step() { printf '\n\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }

if [ -n "${KUBECONFIG:-}" ] && "$("$HERE/k8s.sh" bin)/kubectl" version --request-timeout=5s >/dev/null 2>&1; then
  step "using the cluster in KUBECONFIG=$KUBECONFIG (images must be loadable into its nodes)"
else
  step "bringing up the local single-node Kubernetes (first run builds it: ~20 min)"
  "$HERE/k8s.sh" up
  eval "$("$HERE/k8s.sh" env)"
fi
kubectl() { "$("$HERE/k8s.sh" bin)/kubectl" "$@"; }

step "building helm (first run: a few minutes) and the images, without a registry"
"$ROOT/scripts/tools.sh" install
eval "$("$ROOT/scripts/tools.sh" env)"
images=$("$HERE/images.sh" | tail -1)
version=${images##*:}

step "installing the operator with its Helm chart (localhost/iggy-operator:$version)"
helm upgrade --install iggy-operator "$ROOT/charts/iggy-operator" -n iggy-system --create-namespace \
  --set image.tag="$version" --wait --timeout 180s
kubectl get pods -n iggy-system

step "creating IggyCluster $NS/$CLUSTER (three brokers, every partition on all three; its root password goes to a generated Secret)"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$NS" -f - <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: $CLUSTER}
spec:
  replicas: 3
  version: "$version"
  replication: {defaultFactor: 3}   # minInSync: a majority (2)
  storage: {size: 1Gi}
  resources:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 1Gi}
YAML
kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=300s
for _ in $(seq 1 60); do
  healthy=$(kubectl get iggycluster -n "$NS" "$CLUSTER" -o jsonpath='{range .status.members[?(@.status=="healthy")]}{.id}{end}')
  [ ${#healthy} -eq 3 ] && break
  sleep 2
done
kubectl get iggy -n "$NS"
step "one cluster: its members and metadata leader, as the brokers report them"
kubectl get iggycluster -n "$NS" "$CLUSTER" \
  -o jsonpath='{range .status.members[*]}  {.pod}: {.status}, metadata applied to index {.appliedIndex}{"\n"}{end}metadata leader: broker {.status.metadataLeader}{"\n"}cluster uid: {.status.clusterUid}{"\n"}'

step "a topic declared as YAML: examples/topic.yaml (12 partitions, replication factor 3), kept in sync by the operator"
sed "s/clusterRef: iggy/clusterRef: $CLUSTER/" "$ROOT/examples/topic.yaml" | kubectl apply -n "$NS" -f -
kubectl wait -n "$NS" itopic/orders --for=condition=Ready --timeout=180s
kubectl get itopic -n "$NS"
kubectl get itopic -n "$NS" orders -o jsonpath='{range .status.partitions[*]}  partition {.id}: replicas {.replicas}, leader {.leader}, in sync {.inSync}{"\n"}{end}'

secret=$CLUSTER-root-credentials
username=$(kubectl get secret -n "$NS" "$secret" -o jsonpath='{.data.username}' | base64 -d)
password=$(kubectl get secret -n "$NS" "$secret" -o jsonpath='{.data.password}' | base64 -d)
ip=$(kubectl get service -n "$NS" "$CLUSTER-client" -o jsonpath='{.spec.clusterIP}')

step "a stream created through one connection to Service $NS/$CLUSTER-client ($ip:8090), listed through others"
"$target/release/examples/cluster_tour" "iggy://$username:$password@$ip:8090" 6

step "producing and consuming through the same Service"
"$target/release/examples/produce_consume" "iggy://$username:$password@$ip:8090"

step "the topic's partitions: three replicas each, one leader, all in sync (the brokers' admin API)"
token=$(curl -fsS -X POST "http://$ip:3000/users/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$username\",\"password\":\"$password\"}" | jq -r .access_token.token)
curl -fsS -H "Authorization: Bearer $token" "http://$ip:3000/cluster/partitions" |
  jq -r '.[] | "  partition \(.partition_id): replicas \(.replicas), leader \(.leader), in sync \(.in_sync), committed offset \(.committed // "-")"'

step "a broker pod deleted mid-stream: a producer of numbered messages keeps going, then every acknowledged one is read back"
work=$(mktemp -d)
url="iggy://$username:$password@$ip:8090"
"$target/release/examples/numbered" produce "$url" shop orders "$work/acked" "$work/stop" >"$work/producer.log" 2>&1 &
producer=$!
acked() { if [ -s "$work/acked" ]; then wc -l <"$work/acked"; else echo 0; fi; }
wait_acked() { # COUNT, within two minutes
  local deadline=$((SECONDS + 120))
  until [ "$(acked)" -ge "$1" ]; do
    [ $SECONDS -lt $deadline ] || { echo "the producer is stuck:"; tail "$work/producer.log"; exit 1; }
    sleep 0.5
  done
}
wait_acked 50
echo "  $(acked) messages acknowledged; deleting pod $CLUSTER-1"
kubectl delete pod -n "$NS" "$CLUSTER-1" --wait=true
kubectl wait -n "$NS" "pod/$CLUSTER-1" --for=condition=Ready --timeout=180s
kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=180s
before=$(acked)
wait_acked $((before + 50))
touch "$work/stop"
wait "$producer"
echo "  $(grep -c '^send ' "$work/producer.log" || true) sends failed while the broker restarted (not retried, so never stored twice)"
"$target/release/examples/numbered" verify "$url" shop orders "$work/acked"
rm -rf "$work"

cat <<TXT

Connect any official Iggy SDK through the client Service:
  inside the cluster:  iggy://$username:<password>@$CLUSTER-client.$NS.svc.cluster.local:8090
  from this machine:   iggy://$username:<password>@$ip:8090
  password:            kubectl get secret -n $NS $secret -o jsonpath='{.data.password}' | base64 -d
  kubectl:             $("$HERE/k8s.sh" env)
  the operator:        helm status iggy-operator -n iggy-system; kubectl get iggy -A
  declare topics:      kubectl apply -n $NS -f examples/topic.yaml   (spec.clusterRef: $CLUSTER; kubectl get itopic -A)
  scale the brokers:   kubectl patch iggycluster -n $NS $CLUSTER --type merge -p '{"spec":{"replicas":5}}'
                       (new brokers join, partitions are rebalanced onto them; scaling down drains first)
  roll a change:       kubectl patch iggycluster -n $NS $CLUSTER --type merge -p '{"spec":{"config":{"extra":{"limits.max_connections":"5000"}}}}'
Stop the local cluster with: e2e/k8s.sh down
TXT
