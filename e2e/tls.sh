#!/usr/bin/env bash
# TLS on the local cluster (run by make test after e2e/chart.sh; the cluster
# must be up): the operator installed with its chart → a three-broker
# IggyCluster with spec.tls (the operator's own CA) Ready, its probes green
# over HTTPS, the CA bundle published, status.tls filled → the official SDK
# through the client Service verifies the brokers against the bundle; a
# client without the CA and a plaintext client are refused → under a
# producer of numbered messages (one long-lived connection, SDK defaults)
# and a new client every few seconds that trusts the bundle as published
# at that moment, a forced renewal (iggy.rs/renew-certificates), then a
# full CA rotation (iggy.rs/rotate-ca): both CAs
# published, then every broker on a certificate of the new one, then the
# old one dropped — with no failed request and no pod restarted; every
# acknowledged message is read back once.
# Prints "tls-e2e: N passed, M failed".
set -uo pipefail
# shellcheck source=e2e/lib.sh
. "$(dirname "$0")/lib.sh"
NS=iggy-tls-e2e
CLUSTER=secure
tmp=$(mktemp -d)
cleanup() {
  touch "$tmp/stop"
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
  helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait --timeout 120s >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

step "the images and the operator (chart, operator $version)"
"$HERE/images.sh" >/dev/null || { echo "tls-e2e: 0 passed, 1 failed"; exit 1; }
kubectl delete namespace "$NS" --ignore-not-found --wait --timeout=120s >/dev/null
wait_operator_namespace_gone
check "helm install" helm upgrade --install "$RELEASE" "$CHART" -n "$OPERATOR_NS" --create-namespace \
  --set image.tag="$version" --wait --timeout 180s

step "a three-broker IggyCluster with spec.tls (the operator's CA)"
create_cluster "{enabled: true}"
check "it becomes Ready" kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=300s
equal "the probes use HTTPS" HTTPS \
  "$(kubectl get sts "$CLUSTER" -n "$NS" -o jsonpath='{.spec.template.spec.containers[0].readinessProbe.httpGet.scheme}')"
equal "every broker is Ready (its probes green over HTTPS)" "true true true" \
  "$(kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$CLUSTER" -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{" "}{end}' | xargs)"
bundle() { kubectl get configmap "$CLUSTER-ca-bundle" -n "$NS" -o jsonpath='{.data.ca\.crt}'; }
bundle >"$tmp/ca.crt"
equal "the CA bundle is published (ConfigMap $CLUSTER-ca-bundle, ca.crt)" 1 "$(grep -c 'BEGIN CERTIFICATE' "$tmp/ca.crt")"
equal "status.tls: every broker's certificate expiry" 3 \
  "$(kubectl get iggy "$CLUSTER" -n "$NS" -o jsonpath='{.status.tls.brokers}' | jq length)"
password=$(kubectl get secret "$CLUSTER-root-credentials" -n "$NS" -o jsonpath='{.data.password}' | base64 -d)
ip=$(kubectl get svc "$CLUSTER-client" -n "$NS" -o jsonpath='{.spec.clusterIP}')
domain=$CLUSTER-client.$NS.svc
url() { echo "iggy://iggy:$password@$ip:8090?tls=true&tls_domain=$domain&tls_ca_file=$1"; }
check "the official SDK verifies the brokers against the bundle, through the client Service" \
  timeout 60 "$EXAMPLES/produce_consume" "$(url "$tmp/ca.crt")"
refused() { ! timeout 15 "$EXAMPLES/produce_consume" "$1" >/dev/null 2>&1; }
check "a client that does not trust the cluster's CA is refused" \
  refused "iggy://iggy:$password@$ip:8090?tls=true&tls_domain=$domain"
check "a plaintext client on the TLS port is refused" refused "iggy://iggy:$password@$ip:8090"

# The admin API over HTTPS, through the client Service or one broker.
https() { # HOST ADDRESS METHOD PATH [BODY]
  local token
  token=$(curl -fs --cacert "$tmp/ca.crt" --resolve "$1:3000:$2" -XPOST "https://$1:3000/users/login" \
    -H 'content-type: application/json' -d "{\"username\":\"iggy\",\"password\":\"$password\"}" | jq -r .access_token.token)
  curl -fs --cacert "$tmp/ca.crt" --resolve "$1:3000:$2" -X"$3" "https://$1:3000$4" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' ${5:+-d "$5"}
}
# Issuers of every certificate broker $1 serves.
issuers() {
  local ip; ip=$(kubectl get pod "$CLUSTER-$1" -n "$NS" -o jsonpath='{.status.podIP}')
  https "$CLUSTER-$1.$CLUSTER-headless.$NS.svc" "$ip" GET /cluster/tls | jq -r '[.certificates[].issuer] | unique | join(";")'
}
https "$domain" "$ip" POST /streams '{"name":"e2e"}' >/dev/null
check "a topic of 3 partitions on 3 replicas, over HTTPS" https "$domain" "$ip" POST /streams/e2e/topics \
  '{"name":"numbered","partitions_count":3,"compression_algorithm":"none","message_expiry":0,"max_topic_size":0,"replication_factor":3}'

step "a forced renewal and a CA rotation under a producer and new clients"
restarts() { kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$CLUSTER" -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}' | xargs; }
restarts_before=$(restarts)
"$EXAMPLES/numbered" produce "$(url "$tmp/ca.crt")" e2e numbered "$tmp/acked" "$tmp/stop" >"$tmp/producer.log" 2>&1 &
producer=$!
# A new connection every few seconds, trusting the bundle as published now
# (what an application that mounts the ConfigMap sees).
(
  ok=0 failed=0
  while [ ! -f "$tmp/stop" ]; do
    bundle >"$tmp/now.crt"
    if timeout 20 "$EXAMPLES/produce_consume" "$(url "$tmp/now.crt")" >/dev/null 2>&1; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1)); echo "$(date +%T) a new client failed ($(grep -c BEGIN "$tmp/now.crt") CAs trusted)" >>"$tmp/fresh.log"
    fi
    echo "$ok $failed" >"$tmp/fresh"
    sleep 2
  done
) &
fresh=$!
eventually 60 "the producer's sends are acknowledged" test -s "$tmp/acked"
# Expiries of every certificate broker $1 serves.
expiries() {
  local ip; ip=$(kubectl get pod "$CLUSTER-$1" -n "$NS" -o jsonpath='{.status.podIP}')
  https "$CLUSTER-$1.$CLUSTER-headless.$NS.svc" "$ip" GET /cluster/tls | jq -r '[.certificates[].not_after] | unique | join(";")'
}
before=$(expiries 0)
kubectl annotate iggy "$CLUSTER" -n "$NS" iggy.rs/renew-certificates=e2e --overwrite >/dev/null
renewed() { local id; for id in 0 1 2; do [ "$(expiries "$id")" != "$before" ] || return 1; done; }
eventually 300 "a forced renewal reaches every broker (no restart)" renewed
old_issuer=$(issuers 0)
kubectl annotate iggy "$CLUSTER" -n "$NS" iggy.rs/rotate-ca=e2e --overwrite >/dev/null
both() { [ "$(bundle | grep -c 'BEGIN CERTIFICATE')" = 2 ]; }
eventually 60 "both CAs are published" both
rotated() {
  [ -z "$(kubectl get secret "$CLUSTER-ca" -n "$NS" -o jsonpath='{.metadata.annotations.iggy\.rs/ca-rotation}')" ] || return 1
  [ "$(bundle | grep -c 'BEGIN CERTIFICATE')" = 1 ] || return 1
  bundle >"$tmp/ca.crt"
  local id; for id in 0 1 2; do [ "$(issuers "$id")" != "$old_issuer" ] || return 1; done
}
eventually 600 "the rotation completes: every broker on a certificate of the new CA, the old one dropped" rotated
sleep 5 # a few more sends and new clients on the new CA alone
touch "$tmp/stop"; wait "$producer" "$fresh"
read -r fresh_ok fresh_failed <"$tmp/fresh"
equal "new clients trusting the published bundle: none failed ($fresh_ok succeeded)" 0 "$fresh_failed"
[ -f "$tmp/fresh.log" ] && sed 's/^/    /' "$tmp/fresh.log"
last_line_clean() { tail -1 "$tmp/producer.log" | grep -q ', unknown 0$'; }
check "the producer's long-lived connection: no send failed" last_line_clean
tail -1 "$tmp/producer.log" | sed 's/^/    /'
equal "no broker restarted" "$restarts_before" "$(restarts)"
check "every acknowledged message is read back once" \
  timeout 180 "$EXAMPLES/numbered" verify "$(url "$tmp/ca.crt")" e2e numbered "$tmp/acked"
reasons=$(kubectl get events -n "$NS" --field-selector involvedObject.kind=IggyCluster -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
for reason in CAIssued CertificatesIssued CARotationStarted CARotationIssuing CARotationCompleted; do
  check "Event $reason" grep -qw "$reason" <<<"$reasons"
done

summary tls-e2e
