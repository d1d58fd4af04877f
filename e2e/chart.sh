#!/usr/bin/env bash
# The Helm chart on the local cluster (run by make test after the operator's
# API-server tests; the cluster must be up):
#   helm install (with the Prometheus Operator's CRDs present) → operator
#   Ready, CRDs applied, least-privilege RBAC, helm test → a three-broker
#   IggyCluster Ready with a token-protected PodMonitor, its brokers one
#   cluster (members and metadata leader in its status; a stream created
#   through one connection to the client Service listed through others,
#   from the host) → a real Prometheus, configured
#   from that PodMonitor, scrapes the broker and a message counter rises
#   after producing through the client Service; the chart's alert rules load
#   → IggyTopics: created with 3 partitions on 3 replicas (status per
#   partition), grown, a conflicting resource left out, Delete and Retain
#   → prometheus.io annotations without a PodMonitor → helm upgrade to two
#   replicas with leader election → helm uninstall leaves CRDs and clusters
#   → namespaced mode (watchNamespaces) reconciles with Roles only.
#   From the roll on, a producer of numbered messages runs through the
#   client Service: a config change rolls the brokers, 3 → 5 joins and
#   rebalances, 5 → 3 drains and removes, a pod is deleted; then every
#   acknowledged message is read back once.
# Prints "chart-e2e: N passed, M failed".
set -uo pipefail
# shellcheck source=e2e/lib.sh
. "$(dirname "$0")/lib.sh"
NS=iggy-chart-e2e
CLUSTER=demo
PROM=http://127.0.0.1:19090
SA=system:serviceaccount:$OPERATOR_NS:$RELEASE

query() { # PROMQL: the first value, or empty
  curl -fsG "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'
}
diagnose() {
  echo "---- diagnostics"
  # Broker logs (and those of their previous containers) and every
  # partition's leader epochs, kept outside the state the teardown removes.
  local keep=${TMPDIR:-/tmp}/iggy-chart-e2e-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$keep"
  for pod in $(kubectl get pods -A -l app.kubernetes.io/name=iggy -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}' 2>/dev/null); do
    kubectl logs -n "${pod%%/*}" "${pod#*/}" >"$keep/${pod//\//_}.log" 2>&1
    kubectl logs -n "${pod%%/*}" "${pod#*/}" --previous >"$keep/${pod//\//_}.previous.log" 2>&1
  done
  find "$STATE/volumes" -name leader-epochs -printf '%p: ' -exec sh -c 'tr "\n" " " <"$1"; echo' _ {} \; >"$keep/leader-epochs.txt" 2>/dev/null
  echo "    broker logs and leader epochs kept in $keep"
  kubectl get all,iggy,podmonitors,pvc -n "$NS" -o wide 2>&1 | head -40
  kubectl get pods -n "$OPERATOR_NS" -o wide 2>&1
  kubectl logs -n "$OPERATOR_NS" -l app.kubernetes.io/name=iggy-operator --tail=30 --all-containers 2>&1 | tail -40
}

step "building and importing the broker and operator images"
"$HERE/images.sh" >/dev/null || { echo "chart-e2e: 0 passed, 1 failed"; exit 1; }

step "a fresh start: no release or namespaces left from an earlier run, no iggy CRDs, the Prometheus Operator's CRDs installed"
helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait >/dev/null 2>&1
kubectl delete namespace "$NS" "$NS-team" "$OPERATOR_NS" --ignore-not-found --wait --timeout=120s >/dev/null
if [ -z "$(kubectl get iggyclusters -A -o name 2>/dev/null)" ]; then
  kubectl delete crd iggyclusters.iggy.rs iggytopics.iggy.rs --ignore-not-found --wait >/dev/null
fi
kubectl apply --server-side -f "$MONITORING_CRDS/monitoring.coreos.com_podmonitors.yaml" \
  -f "$MONITORING_CRDS/monitoring.coreos.com_servicemonitors.yaml" \
  -f "$MONITORING_CRDS/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/podmonitors.monitoring.coreos.com \
  crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

step "helm install $RELEASE (operator $version, ServiceMonitor, PrometheusRule, dashboards)"
check "helm install" helm install "$RELEASE" "$CHART" -n "$OPERATOR_NS" --create-namespace \
  --set image.tag="$version" --set metrics.serviceMonitor.enabled=true \
  --set prometheusRule.enabled=true --set dashboards.enabled=true --wait --timeout 180s
check "the operator Deployment is rolled out" kubectl rollout status -n "$OPERATOR_NS" deploy/$RELEASE --timeout=120s
equal "the operator pod is Ready" True \
  "$(kubectl get pods -n "$OPERATOR_NS" -l app.kubernetes.io/name=iggy-operator -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}')"
crd_stamped() {
  kubectl get crd iggyclusters.iggy.rs -o jsonpath='{.metadata.annotations.iggy\.rs/operator-version}' | grep -qx "$version"
}
eventually 60 "the operator stamped the CRDs Helm installed with its version" crd_stamped
for object in servicemonitor/$RELEASE prometheusrule/$RELEASE configmap/$RELEASE-dashboards service/$RELEASE-metrics; do
  check "the chart created $object" kubectl get -n "$OPERATOR_NS" "$object"
done
check "helm test" helm test "$RELEASE" -n "$OPERATOR_NS" --logs --timeout 120s

step "least privilege: what the operator's ServiceAccount may do"
can() { kubectl auth can-i --as="$SA" "$@" 2>/dev/null; }
equal "it may manage StatefulSets in any namespace" yes "$(can create statefulsets -n "$NS")"
equal "it may patch its own CRDs" yes "$(can patch customresourcedefinitions/iggyclusters.iggy.rs)"
equal "it may not patch other CRDs" no "$(can patch customresourcedefinitions/podmonitors.monitoring.coreos.com)"
equal "it may not delete pods" no "$(can delete pods -n kube-system)"
equal "it may evict pods (rolling restarts, bounded by the PodDisruptionBudget)" yes "$(can create pods --subresource=eviction -n "$NS")"
equal "it may patch the brokers' claims (storage growth)" yes "$(can patch persistentvolumeclaims -n "$NS")"
equal "it may not delete claims" no "$(can delete persistentvolumeclaims -n "$NS")"
equal "it may read StorageClasses" yes "$(can get storageclasses)"
equal "it may not change StorageClasses" no "$(can patch storageclasses)"
equal "it may renew its own Lease" yes "$(can update leases/iggy-operator-leader -n "$OPERATOR_NS")"
equal "it may not touch other Leases" no "$(can update leases/kube-scheduler -n kube-system)"
equal "it may not read Nodes" no "$(can list nodes)"
equal "no cert-manager Certificates where cert-manager is not installed" no "$(can create certificates.cert-manager.io -n "$NS")"

step "a three-broker IggyCluster with a token-protected PodMonitor"
token=$(openssl rand -hex 16)
kubectl create namespace "$NS" >/dev/null
kubectl create secret generic scrape -n "$NS" --from-literal=token="$token" >/dev/null
kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: $CLUSTER}
spec:
  replicas: 3
  version: "$version"
  storage: {size: 1Gi}
  resources:
    requests: {cpu: 100m, memory: 64Mi}
    limits: {memory: 512Mi}
  metrics:
    labels: {release: e2e}
    interval: 5s
    tokenSecret: {name: scrape, key: token}
YAML
check "the IggyCluster becomes Ready" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=180s \
  || diagnose
monitor=$(kubectl get podmonitor -n "$NS" $CLUSTER-brokers -o json 2>/dev/null || echo '{}')
equal "the operator created PodMonitor $CLUSTER-brokers with the user's labels" e2e "$(jq -r '.metadata.labels.release // empty' <<<"$monitor")"
equal "the PodMonitor presents the token Secret" scrape "$(jq -r '.spec.podMetricsEndpoints[0].authorization.credentials.name // empty' <<<"$monitor")"
equal "no scrape annotations when a PodMonitor exists" none \
  "$(kubectl get service -n "$NS" $CLUSTER-headless -o json | jq -r '.metadata.annotations["prometheus.io/scrape"] // "none"')"

step "the three brokers are one cluster"
members_healthy() { # prints the status it saw, for the failure report
  local status
  status=$(kubectl get iggycluster -n "$NS" $CLUSTER -o json | jq -c '.status | {metadataLeader, members, clusterUid}') || return 1
  echo "$status"
  jq -e '(.members // []) | length == 3 and all(.status == "healthy")' <<<"$status" >/dev/null &&
    jq -e '.metadataLeader | . != null and . >= 0 and . <= 2' <<<"$status" >/dev/null &&
    jq -e '.clusterUid // "" | test("^[0-9a-f]{16}$")' <<<"$status" >/dev/null
}
eventually 120 "status.members lists three healthy brokers, status.metadataLeader one of them, status.clusterUid the cluster's uid" members_healthy
check "the brokers' shared secret was generated" kubectl get secret -n "$NS" $CLUSTER-cluster-secret
tour_password=$(kubectl get secret -n "$NS" $CLUSTER-root-credentials -o jsonpath='{.data.password}' | base64 -d)
tour_ip=$(kubectl get service -n "$NS" $CLUSTER-client -o jsonpath='{.spec.clusterIP}')
tour_user=$(kubectl get secret -n "$NS" $CLUSTER-root-credentials -o jsonpath='{.data.username}' | base64 -d)
tour_out=$STATE/cluster-tour.out
if "${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}/release/examples/cluster_tour" \
  "iggy://$tour_user:$tour_password@$tour_ip:8090" 10 >"$tour_out" 2>&1; then
  ok "from the host, through ClusterIP $tour_ip: a stream created through one connection is listed through nine others"
else
  not_ok "from the host, through ClusterIP $tour_ip: a stream created through one connection is listed through nine others"
fi
sed 's/^/    /' "$tour_out"
equal "the roster names every broker at the ClusterIP (no client is sent where it cannot go)" 3 \
  "$(grep -c " $tour_ip:8090 " "$tour_out")"
check "connections through the Service reached more than one broker" \
  grep -Eq "reached [23] of 3 brokers" "$tour_out"
broker_api() { # PATH [CURL ARGS...]: broker 0's HTTP API as root
  local path=$1 ip token; shift
  ip=$(kubectl get pod -n "$NS" $CLUSTER-0 -o jsonpath='{.status.podIP}') || return 1
  token=$(curl -fsS -X POST "http://$ip:3000/users/login" -H 'Content-Type: application/json' \
    -d "$(jq -nc --arg u "$tour_user" --arg p "$tour_password" '{username: $u, password: $p}')" |
    jq -r '.access_token.token') || return 1
  curl -s -H "Authorization: Bearer $token" "$@" "http://$ip:3000$path"
}
zones_seen() { # prints what a broker reports, for the failure report
  local zones
  zones=$(broker_api /cluster/status -f | jq -c '[.nodes[].zone]') || return 1
  echo "$zones"
  [ "$zones" = '["local-a","local-a","local-a"]' ]
}
equal "the broker pod carries its node's zone label (copied by the API server)" local-a \
  "$(kubectl get pod -n "$NS" $CLUSTER-0 -o json | jq -r '.metadata.labels | .["topology.kubernetes.io/zone"] // .["topology.k8s.io/zone"] // empty')"
eventually 30 "every broker registered the zone of its node (GET /cluster/status)" zones_seen

step "a real Prometheus configured from the PodMonitor"
port_name=$(jq -r '.spec.podMetricsEndpoints[0].port' <<<"$monitor")
path=$(jq -r '.spec.podMetricsEndpoints[0].path' <<<"$monitor")
selector=$(jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")' <<<"$monitor")
secret=$(jq -r '.spec.podMetricsEndpoints[0].authorization.credentials | "\(.name) \(.key)"' <<<"$monitor")
prom_dir=$STATE/prometheus-config; rm -rf "$prom_dir"; mkdir -p "$prom_dir/targets"
kubectl get secret -n "$NS" "${secret% *}" -o json | jq -r ".data[\"${secret#* }\"]" | base64 -d > "$prom_dir/broker-token"
# Pod IPs and the named port, as the Prometheus Operator resolves a PodMonitor.
kubectl get pods -n "$NS" -l "$selector" -o json | jq --arg port "$port_name" --arg c "$CLUSTER" '
  [.items[] | select(.status.podIP) | . as $pod
   | ($pod.spec.containers[].ports[]? | select(.name == $port) | .containerPort) as $number
   | {targets: ["\($pod.status.podIP):\($number)"],
      labels: {namespace: $pod.metadata.namespace, pod: $pod.metadata.name, iggy_cluster: $c}}]' \
  > "$prom_dir/targets/brokers.json"
operator_target=$(kubectl get service -n "$OPERATOR_NS" $RELEASE-metrics -o jsonpath='{.spec.clusterIP}:{.spec.ports[0].port}')
echo "[{\"targets\": [\"$operator_target\"], \"labels\": {\"namespace\": \"$OPERATOR_NS\"}}]" > "$prom_dir/targets/operator.json"
cat > "$prom_dir/prometheus.yml" <<YAML
global: {scrape_interval: 2s, evaluation_interval: 2s}
rule_files: ["$CHART/files/prometheus-rules.yaml"]
scrape_configs:
  - job_name: iggy-broker
    metrics_path: $path
    authorization: {type: Bearer, credentials_file: $prom_dir/broker-token}
    file_sd_configs: [{files: ["$prom_dir/targets/brokers.json"], refresh_interval: 2s}]
  - job_name: iggy-operator
    file_sd_configs: [{files: ["$prom_dir/targets/operator.json"], refresh_interval: 2s}]
YAML
echo "    targets: $(jq -c '[.[].targets[]]' "$prom_dir/targets/brokers.json") (port $port_name, path $path), operator $operator_target"
check "Prometheus starts" "$HERE/k8s.sh" prometheus "$prom_dir/prometheus.yml"
broker_ip=$(jq -r '.[0].targets[0]' "$prom_dir/targets/brokers.json")
equal "the broker refuses /metrics without the token" 401 "$(curl -s -o /dev/null -w '%{http_code}' "http://$broker_ip$path")"
is_up() { [ "$(query "up{$1}")" = 1 ]; }
eventually 60 "Prometheus scrapes the broker (up == 1)" is_up "job=\"iggy-broker\",iggy_cluster=\"$CLUSTER\""
eventually 60 "Prometheus scrapes the operator (up == 1)" is_up 'job="iggy-operator"'
equal "exactly one operator replica reports itself leader" 1 "$(query 'sum(iggy_operator_leader{job="iggy-operator"})')"
counter="sum(iggy_broker_messages_in_total{job=\"iggy-broker\",iggy_cluster=\"$CLUSTER\"}) or vector(0)"
before=$(query "$counter"); before=${before:-0}

step "producing through Service $NS/$CLUSTER-client and watching the counter"
password=$(kubectl get secret -n "$NS" $CLUSTER-root-credentials -o jsonpath='{.data.password}' | base64 -d)
username=$(kubectl get secret -n "$NS" $CLUSTER-root-credentials -o jsonpath='{.data.username}' | base64 -d)
client_ip=$(kubectl get service -n "$NS" $CLUSTER-client -o jsonpath='{.spec.clusterIP}')
check "10 messages produced and consumed with the iggy SDK" \
  "${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}/release/examples/produce_consume" "iggy://$username:$password@$client_ip:8090"
rises() { local now; now=$(query "$counter"); [ "${now%.*}" -ge $(( ${before%.*} + 10 )) ] && echo "$before -> $now"; }
eventually 60 "iggy_broker_messages_in_total rises by the 10 messages (from $before)" rises
rules_healthy() {
  curl -fs "$PROM/api/v1/rules" | jq -e '[.data.groups[].rules[]] | length >= 11 and all(.health == "ok")'
}
eventually 30 "the chart's alert rules are loaded and evaluate without errors" rules_healthy
equal "IggyBrokerDown is not firing" 0 "$(query 'count(ALERTS{alertname="IggyBrokerDown",alertstate="firing"}) or vector(0)')"
# The three partitions are spread over the brokers; each broker's gauge
# follows its next scrape.
partitions_series() { [ "$(query "sum(iggy_broker_partitions{job=\"iggy-broker\",iggy_cluster=\"$CLUSTER\"})")" = 3 ]; }
eventually 30 "the dashboard's partitions series sums to the topic's 3 partitions" partitions_series

step "IggyTopic: topics declared as YAML, kept in sync by the operator"
topic_json() { kubectl get itopic -n "$NS" "$1" -o json; }
condition() { # TOPIC TYPE: "status reason" of that condition
  topic_json "$1" | jq -r --arg t "$2" '.status.conditions[]? | select(.type == $t) | "\(.status) \(.reason)"'
}
topic_ready() { local c; c=$(condition "$1" Ready); echo "$c"; [ "${c%% *}" = True ]; }
in_sync_partitions() { # TOPIC: how many partitions have 3 replicas, all in sync, and a leader
  topic_json "$1" | jq '[.status.partitions[]? | select((.replicas | length) == 3 and (.inSync | length) == 3 and .leader != null)] | length'
}
declare_topic() { # NAME PARTITIONS POLICY [TOPIC NAME]
  kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyTopic
metadata: {name: $1}
spec: {clusterRef: $CLUSTER, stream: e2e, name: ${4:-$1}, partitions: $2, replicationFactor: 3, messageExpiry: 1d, deletionPolicy: $3}
YAML
}
topic_in_broker() { broker_api "/streams/e2e/topics/$1" -o /dev/null -w '%{http_code}'; }
declare_topic events 3 Delete
eventually 120 "IggyTopic events becomes Ready" topic_ready events
equal "its status lists 3 partitions, each led and on 3 replicas in sync" 3 "$(in_sync_partitions events)"
equal "it carries the operator's finalizer" iggy.rs/topic "$(topic_json events | jq -r '.metadata.finalizers[]? // empty')"
check "kubectl get itopic shows partitions, replication and readiness" \
  sh -c "$(printf '%q ' "$KUBECTL") get itopic -n $NS events | grep -Eq 'events +$CLUSTER +3 +3 +True +InSync'"
declare_topic events 5 Delete
grown() { [ "$(in_sync_partitions events)" = 5 ] && topic_ready events; }
eventually 90 "growing spec.partitions to 5 adds two partitions in the broker" grown
check "kubectl describe shows the operator's Events" \
  sh -c "$(printf '%q ' "$KUBECTL") describe itopic -n $NS events | grep -q TopicCreated"
# A second resource declaring the same broker topic with other settings.
declare_topic impostor 2 Delete events
conflicted() { local c; c=$(condition impostor Conflict); echo "$c"; [ "$c" = "True TopicExists" ]; }
eventually 60 "a resource declaring someone else's topic with other settings gets Conflict" conflicted
equal "the conflicting resource left the broker's topic alone (5 partitions)" 5 \
  "$(broker_api /streams/e2e/topics/events | jq -r '.partitions_count // empty')"
check "deleting the conflicting resource completes (it created nothing)" \
  kubectl delete itopic -n "$NS" impostor --timeout=60s
still_ready() { topic_ready events; }
eventually 30 "and the topic it conflicted with is still there and Ready" still_ready
declare_topic kept 1 Retain
eventually 120 "IggyTopic kept (deletionPolicy Retain) becomes Ready" topic_ready kept
check "deleting IggyTopic events (Delete) completes" kubectl delete itopic -n "$NS" events --timeout=60s
equal "and topic events is gone from the broker" 404 "$(topic_in_broker events)"
check "deleting IggyTopic kept (Retain) completes" kubectl delete itopic -n "$NS" kept --timeout=60s
equal "and topic kept stays in the broker" 200 "$(topic_in_broker kept)"

step "a producer of numbered messages runs through the client Service from here on"
numbered=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}/release/examples/numbered
numbered_dir=$(mktemp -d)
numbered_url="iggy://$tour_user:$tour_password@$tour_ip:8090"
declare_topic numbered 6 Retain
eventually 120 "IggyTopic numbered (6 partitions, replication factor 3) becomes Ready" topic_ready numbered
equal "its 6 partitions are led and in sync on 3 replicas" 6 "$(in_sync_partitions numbered)"
"$numbered" produce "$numbered_url" e2e numbered "$numbered_dir/acked" "$numbered_dir/stop" \
  >"$numbered_dir/producer.log" 2>&1 &
producer_pid=$!
acked() { [ -s "$numbered_dir/acked" ] && wc -l <"$numbered_dir/acked"; }
acked_more() { # COUNT: the producer's acknowledgements grow by COUNT
  local target=$(( $(acked || echo 0) + $1 ))
  eventually 120 "the producer keeps getting acknowledgements ($target)" sh -c "[ \$(wc -l <'$numbered_dir/acked') -ge $target ]"
}
acked_more 20

step "a config change rolls the brokers one at a time, gated by the brokers"
old_revision=$(kubectl get statefulset -n "$NS" $CLUSTER -o jsonpath='{.status.updateRevision}')
roll_started=$SECONDS
kubectl patch iggycluster -n "$NS" $CLUSTER --type merge \
  -p '{"spec":{"config":{"extra":{"limits.max_connections":"5000"}}}}' >/dev/null
rolled() {
  local status sts_revision
  sts_revision=$(kubectl get statefulset -n "$NS" $CLUSTER -o jsonpath='{.status.updateRevision}') || return 1
  status=$(kubectl get iggycluster -n "$NS" $CLUSTER -o json | jq -c '.status | {updatedReplicas, updateRevision, readyReplicas}') || return 1
  echo "$status (StatefulSet update revision $sts_revision)"
  [ "$sts_revision" != "$old_revision" ] &&
    jq -e --arg r "$sts_revision" '.updatedReplicas == 3 and .updateRevision == $r and .readyReplicas == 3' <<<"$status" >/dev/null
}
eventually 600 "all three brokers run the new revision and are Ready (status.updatedReplicas)" rolled
echo "    rolled 3 brokers in $((SECONDS - roll_started)) s"
# Events of one reason on one object form a series (events.k8s.io).
event_count() { # REASON: Events of that reason on the IggyCluster
  kubectl get events.events.k8s.io -n "$NS" -o json |
    jq --arg r "$1" '[.items[] | select(.reason == $r and .regarding.kind == "IggyCluster") | (.series.count // 1)] | add // 0'
}
equal "the operator recorded a RollingRestart Event for each of the three pods" 3 "$(event_count RollingRestart)"
check "every pod carries the new setting" \
  sh -c "$(printf '%q ' "$KUBECTL") get pods -n $NS -l app.kubernetes.io/instance=$CLUSTER -o json | jq -e '[.items[].spec.containers[0].env[] | select(.name == \"IGGY_LIMITS_MAX_CONNECTIONS\")] | length == 3'"
check "the cluster is Ready again" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=120s
acked_more 20

step "scale 3 → 5: the new brokers join and partitions are rebalanced onto them"
scale_started=$SECONDS
kubectl patch iggycluster -n "$NS" $CLUSTER --type merge -p '{"spec":{"replicas":5}}' >/dev/null
voters() { broker_api /cluster/status -f | jq -c '[.nodes[] | select(.voter) | .id]'; }
voters_are() { # JSON LIST: the metadata group's voters, as broker 0 reports them
  local seen; seen=$(voters) || return 1
  echo "$seen"; [ "$seen" = "$1" ]
}
eventually 300 "brokers 3 and 4 joined the metadata group as voters" voters_are '[0,1,2,3,4]'
echo "    joined in $((SECONDS - scale_started)) s"
balanced() { # every broker within one replica and one leadership of the others, nothing moving
  local partitions
  partitions=$(broker_api /cluster/partitions -f) || return 1
  jq -c '{replicas: ([.[].replicas[]] | group_by(.) | map(length)), leaders: ([.[].leader] | group_by(.) | map(length)), moving: ([.[] | select(.reassigning != null)] | length)}' <<<"$partitions"
  jq -e '([.[].replicas[]] | group_by(.) | map(length)) as $r | ([.[].leader] | group_by(.) | map(length)) as $l
    | ($r | length) == 5 and ($r | max) - ($r | min) <= 1 and ($l | length) == 5 and ($l | max) - ($l | min) <= 1
    and all(.reassigning == null and (.in_sync | length) == (.replicas | length))' <<<"$partitions" >/dev/null
}
eventually 300 "replicas and leaders are spread evenly over the five brokers" balanced
echo "    3 → 5 balanced in $((SECONDS - scale_started)) s"
check "the cluster is Ready with 5 brokers" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=120s
acked_more 20

step "scale 5 → 3: the highest brokers are drained and removed one at a time"
scale_started=$SECONDS
kubectl patch iggycluster -n "$NS" $CLUSTER --type merge -p '{"spec":{"replicas":3}}' >/dev/null
three_pods() {
  local replicas voters
  replicas=$(kubectl get statefulset -n "$NS" $CLUSTER -o jsonpath='{.spec.replicas}') || return 1
  voters=$(voters) || return 1
  echo "StatefulSet $replicas, voters $voters"
  [ "$replicas" = 3 ] && [ "$voters" = '[0,1,2]' ]
}
eventually 400 "the StatefulSet is down to 3 pods and brokers 0–2 are the voters" three_pods
echo "    5 → 3 in $((SECONDS - scale_started)) s"
equal "two brokers were removed after draining (BrokerRemoved Events)" 2 "$(event_count BrokerRemoved)"
removed_order=$(kubectl get events.events.k8s.io -n "$NS" -o json |
  jq -r '[.items[] | select(.reason == "BrokerRemoved") | .note] | sort | join("; ")')
echo "    $removed_order"
equal "no partition is left on brokers 3 or 4" 0 \
  "$(broker_api /cluster/partitions -f | jq '[.[] | select(any(.replicas[]; . >= 3))] | length')"
check "the cluster is Ready with 3 brokers" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=120s
equal "the volumes of brokers 3 and 4 are kept" 2 \
  "$(kubectl get pvc -n "$NS" -o json | jq '[.items[].metadata.name | select(test("-[34]$"))] | length')"
acked_more 20

step "a broker pod deleted under load"
delete_started=$SECONDS
check "pod $CLUSTER-1 is deleted" kubectl delete pod -n "$NS" $CLUSTER-1 --wait=true --timeout=60s
check "the cluster is Ready again" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=180s
eventually 120 "the pod is back and Ready" kubectl wait -n "$NS" pod/$CLUSTER-1 --for=condition=Ready --timeout=5s
echo "    back in $((SECONDS - delete_started)) s"
acked_more 20

step "every acknowledged message was kept exactly once"
touch "$numbered_dir/stop"
wait "$producer_pid"
sed 's/^/    /' "$numbered_dir/producer.log" | grep -v '^    send ' | tail -3
echo "    $(grep -c '^send ' "$numbered_dir/producer.log") sends failed or went unanswered (not retried, so never stored twice)"
if verified=$(RUST_BACKTRACE=0 "$numbered" verify "$numbered_url" e2e numbered "$numbered_dir/acked" 2>&1); then
  ok "consumed through the client Service: every acknowledged id once, none twice"
  echo "    $verified"
else
  not_ok "consumed through the client Service: every acknowledged id once, none twice"
  echo "$verified" | head -5 | sed 's/^/    /'
  diagnose
fi

step "without a PodMonitor: prometheus.io annotations"
kubectl apply -n "$NS" -f - >/dev/null <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: annotated}
spec:
  replicas: 1
  version: "$version"
  storage: {size: 1Gi}
  metrics: {monitor: Annotations}
YAML
annotated() {
  kubectl get service -n "$NS" annotated-headless \
    -o jsonpath='{.metadata.annotations.prometheus\.io/scrape} {.metadata.annotations.prometheus\.io/port}' | grep -qx 'true 3000'
}
eventually 60 "the headless Service carries prometheus.io/scrape and the HTTP port" annotated
check "and no PodMonitor" none podmonitor -n "$NS" annotated-brokers
if kubectl apply -n "$NS" -f - >/dev/null 2>"$prom_dir/cel.err" <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: invalid}
spec: {replicas: 1, metrics: {monitor: Annotations, tokenSecret: {name: scrape, key: token}}}
YAML
then not_ok "a token with annotation-based scraping is rejected"
else check "a token with annotation-based scraping is rejected with a clear message" grep -q "annotations cannot carry a token" "$prom_dir/cel.err"
fi
kubectl delete iggycluster -n "$NS" annotated --wait=false >/dev/null

step "helm upgrade: two operator replicas, one leader"
check "helm upgrade" helm upgrade "$RELEASE" "$CHART" -n "$OPERATOR_NS" --reuse-values \
  --set replicaCount=2 --set logLevel=debug --wait --timeout 180s
check "both operator replicas are rolled out" kubectl rollout status -n "$OPERATOR_NS" deploy/$RELEASE --timeout=120s
equal "two Ready replicas" 2 "$(kubectl get deploy -n "$OPERATOR_NS" $RELEASE -o jsonpath='{.status.readyReplicas}')"
lease_held_by_a_pod() {
  local holder; holder=$(kubectl get lease -n "$OPERATOR_NS" iggy-operator-leader -o jsonpath='{.spec.holderIdentity}')
  kubectl get pods -n "$OPERATOR_NS" -l app.kubernetes.io/name=iggy-operator -o name | grep -qx "pod/$holder"
}
eventually 60 "the Lease is held by one of the new pods" lease_held_by_a_pod
check "the cluster stays Ready" kubectl wait -n "$NS" iggycluster/$CLUSTER --for=condition=Ready --timeout=60s
check "helm test after the upgrade" helm test "$RELEASE" -n "$OPERATOR_NS" --logs --timeout 120s
equal "helm history shows two revisions" 2 "$(helm history "$RELEASE" -n "$OPERATOR_NS" -o json | jq length)"

step "helm uninstall"
check "helm uninstall" helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait --timeout 120s
check "the operator Deployment is gone" none deploy -n "$OPERATOR_NS"
check "its ClusterRoles are gone" none clusterrole "$RELEASE" "$RELEASE-crds"
check "the CRDs stay (they hold users' clusters)" kubectl get crd iggyclusters.iggy.rs iggytopics.iggy.rs
check "the IggyCluster and its broker stay" kubectl get -n "$NS" iggycluster/$CLUSTER statefulset/$CLUSTER

step "namespaced mode: watchNamespaces gives Roles only where clusters live"
NS2=$NS-team
kubectl create namespace "$NS2" >/dev/null
check "helm install with watchNamespaces=[$NS2]" helm install "$RELEASE" "$CHART" -n "$OPERATOR_NS" \
  --set image.tag="$version" --set "watchNamespaces={$NS2}" --wait --timeout 180s
equal "no cluster-wide access to Secrets" no "$(can list secrets -n "$NS")"
equal "Secrets in the watched namespace" yes "$(can list secrets -n "$NS2")"
kubectl apply -n "$NS2" -f - >/dev/null <<YAML
apiVersion: iggy.rs/v1alpha1
kind: IggyCluster
metadata: {name: team}
spec: {replicas: 1, version: "$version", storage: {size: 1Gi}, metrics: {monitor: None}}
YAML
check "an IggyCluster in the watched namespace becomes Ready" \
  kubectl wait -n "$NS2" iggycluster/team --for=condition=Ready --timeout=180s
check "helm uninstall (namespaced)" helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait --timeout 120s
check "its Roles are gone" none role -n "$NS2"

step "cleaning up"
kubectl delete namespace "$NS2" --wait=false >/dev/null 2>&1
kubectl delete namespace "$NS" "$OPERATOR_NS" --wait=false >/dev/null 2>&1
[ "$failed" = 0 ] || diagnose
summary chart-e2e
