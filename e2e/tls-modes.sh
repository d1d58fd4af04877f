#!/usr/bin/env bash
# The spec.tls modes besides the operator's own CA, end to end on the local
# cluster (make e2e-tls-modes; the cluster must be up):
#   CertManager: cert-manager v1.21.2's controllers and admission webhook,
#   built from its Go module (e2e/cert-manager), run in pods with the RBAC,
#   Services and webhook configurations of cert-manager's own chart, and its
#   CRDs → a self-signed ClusterIssuer makes a CA, a CA ClusterIssuer signs
#   with it → the operator (chart) and a three-broker IggyCluster with
#   mode CertManager: the Certificate it asks for passes the webhook and is
#   issued, the cluster becomes Ready with HTTPS probes, the CA bundle is
#   published, the official SDK verifies the brokers against it through the
#   client Service, a client without it is refused → under a producer of
#   numbered messages, a forced renewal (iggy.rs/renew-certificates →
#   cert-manager re-issues) reaches every broker with no failed send and no
#   restart; every acknowledged message is read back once.
#   Secret: the same with a user's Secret (a wildcard certificate for the
#   brokers and the client Service, from the user's CA), replaced in place
#   by the user under a producer.
#   Switching: inter-broker TLS turned on for a running plaintext cluster,
#   then off again, under a producer: each takes two rolls (brokers first
#   accept peers with and without TLS), every acknowledged message is read
#   back once.
# Prints "tls-modes-e2e: N passed, M failed".
set -uo pipefail
# shellcheck source=e2e/lib.sh
. "$(dirname "$0")/lib.sh"
CERT_MANAGER_VERSION=v1.21.2
CM_NS=cert-manager
NS=iggy-cert-manager-e2e
CLUSTER=managed
tmp=$(mktemp -d)
cleanup() {
  touch "$tmp/stop"
  kubectl delete namespace iggy-cert-manager-e2e iggy-secret-e2e iggy-switch-e2e --wait=false >/dev/null 2>&1
  helm uninstall "$RELEASE" -n "$OPERATOR_NS" --wait --timeout 120s >/dev/null 2>&1
  kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration cert-manager-webhook >/dev/null 2>&1
  kubectl delete clusterissuer --all >/dev/null 2>&1
  kubectl delete namespace "$CM_NS" --wait=false >/dev/null 2>&1
  # The API-server tests expect no cert-manager CRDs.
  [ -n "${module:-}" ] && kubectl delete -f "$module/deploy/crds/" --wait=false >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
# A step the rest depends on failed: stop here.
give_up() { summary tls-modes-e2e; exit 1; }

step "cert-manager $CERT_MANAGER_VERSION from its Go module, the operator's images"
module=$(cd "$HERE/cert-manager" && GOWORK=off go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | jq -r .Dir)
[ -d "$module/deploy/crds" ] || { echo "tls-modes-e2e: 0 passed, 1 failed (no module source)"; exit 1; }
images=$STATE/images
mkdir -p "$images"
root=$tmp/rootfs
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
echo "nonroot:x:65532:65532:nonroot:/:/sbin/nologin" >"$root/etc/passwd"
check "cert-manager builds" env -C "$HERE/cert-manager" GOWORK=off CGO_ENABLED=0 \
  go build -trimpath -ldflags "-s -w" -o "$root/usr/local/bin/cert-manager" . || give_up
image=localhost/cert-manager:$CERT_MANAGER_VERSION-iggy-e2e
"$HERE/image.sh" "$images/cert-manager.tar" "$image" "$root" '["/usr/local/bin/cert-manager"]' 65532 &&
  "$HERE/k8s.sh" import "$images/cert-manager.tar" >/dev/null || { echo "tls-modes-e2e: 0 passed, 1 failed"; exit 1; }
"$HERE/images.sh" >/dev/null || { echo "tls-modes-e2e: 0 passed, 1 failed"; exit 1; }

step "cert-manager: its CRDs, its chart's RBAC and webhook configurations, our pods"
kubectl delete namespace "$NS" --ignore-not-found --wait --timeout=120s >/dev/null
wait_operator_namespace_gone
kubectl apply --server-side -f "$module/deploy/crds/" >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f "$module/deploy/crds/" >/dev/null
kubectl create namespace "$CM_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
helm template cert-manager "$module/deploy/charts/cert-manager" --namespace "$CM_NS" \
  --show-only templates/rbac.yaml --show-only templates/webhook-rbac.yaml \
  --show-only templates/serviceaccount.yaml --show-only templates/webhook-serviceaccount.yaml \
  --show-only templates/webhook-service.yaml --show-only templates/webhook-validating-webhook.yaml \
  --show-only templates/webhook-mutating-webhook.yaml >"$tmp/cert-manager.yaml" &&
  kubectl apply -f "$tmp/cert-manager.yaml" >/dev/null
# The webhook's serving certificate (upstream's cainjector would publish
# the CA bundle; here the script does).
webhook_host=cert-manager-webhook.$CM_NS.svc
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=webhook-ca \
  -keyout "$tmp/webhook-ca.key" -out "$tmp/webhook-ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$webhook_host" \
  -keyout "$tmp/webhook.key" -out "$tmp/webhook.csr" 2>/dev/null
openssl x509 -req -in "$tmp/webhook.csr" -CA "$tmp/webhook-ca.crt" -CAkey "$tmp/webhook-ca.key" -days 1 \
  -extfile <(echo "subjectAltName=DNS:$webhook_host") -out "$tmp/webhook.crt" 2>/dev/null
kubectl create secret tls cert-manager-webhook-tls -n "$CM_NS" --cert "$tmp/webhook.crt" --key "$tmp/webhook.key" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
ca_bundle=$(base64 -w0 <"$tmp/webhook-ca.crt")
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  kubectl patch "$kind" cert-manager-webhook --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]" >/dev/null
done
kubectl apply -n "$CM_NS" -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: cert-manager}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: cert-manager, app.kubernetes.io/instance: cert-manager}}
  template:
    metadata: {labels: {app.kubernetes.io/name: cert-manager, app.kubernetes.io/instance: cert-manager}}
    spec:
      serviceAccountName: cert-manager
      containers:
      - name: controller
        image: $image
        imagePullPolicy: Never
        args: [controller, --cluster-resource-namespace=$CM_NS]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cert-manager-webhook}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: webhook, app.kubernetes.io/instance: cert-manager, app.kubernetes.io/component: webhook}}
  template:
    metadata: {labels: {app.kubernetes.io/name: webhook, app.kubernetes.io/instance: cert-manager, app.kubernetes.io/component: webhook}}
    spec:
      serviceAccountName: cert-manager-webhook
      containers:
      - name: webhook
        image: $image
        imagePullPolicy: Never
        args: [webhook, --secure-port=10250, --healthz-port=6080]
        ports: [{name: https, containerPort: 10250}, {name: healthcheck, containerPort: 6080}]
        readinessProbe: {httpGet: {path: /healthz, port: 6080}, periodSeconds: 2}
        volumeMounts: [{name: tls, mountPath: /tls, readOnly: true}]
      volumes: [{name: tls, secret: {secretName: cert-manager-webhook-tls}}]
YAML
check "the controller is rolled out" kubectl rollout status -n "$CM_NS" deploy/cert-manager --timeout=120s || give_up
check "the webhook is rolled out" kubectl rollout status -n "$CM_NS" deploy/cert-manager-webhook --timeout=120s || give_up
invalid() {
  ! kubectl apply --dry-run=server -n "$CM_NS" -f - >"$tmp/invalid.out" 2>&1 <<'YAML' || return 1
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: invalid}
spec: {secretName: invalid, issuerRef: {name: nobody}}
YAML
  grep -q 'admission webhook "webhook.cert-manager.io" denied' "$tmp/invalid.out" || { cat "$tmp/invalid.out"; return 1; }
}
eventually 60 "the webhook validates: a Certificate without names is denied" invalid || give_up

step "a CA ClusterIssuer, its CA made by a self-signed one"
kubectl apply -f - >/dev/null <<YAML
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: iggy-ca, namespace: $CM_NS}
spec:
  isCA: true
  commonName: iggy e2e CA (cert-manager)
  secretName: iggy-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: ClusterIssuer, group: cert-manager.io}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: iggy-ca}
spec: {ca: {secretName: iggy-ca}}
YAML
check "the CA Certificate is issued" kubectl wait -n "$CM_NS" certificate/iggy-ca --for=condition=Ready --timeout=120s
check "the CA ClusterIssuer is Ready" kubectl wait clusterissuer/iggy-ca --for=condition=Ready --timeout=120s || give_up

step "the operator (chart, operator $version) and a three-broker IggyCluster with spec.tls.mode CertManager"
check "helm install" helm upgrade --install "$RELEASE" "$CHART" -n "$OPERATOR_NS" --create-namespace \
  --set image.tag="$version" --wait --timeout 180s
SA=system:serviceaccount:$OPERATOR_NS:$RELEASE
equal "the operator may manage Certificates (cert-manager's CRDs are served)" yes \
  "$(kubectl auth can-i --as="$SA" create certificates.cert-manager.io -n "$NS" 2>/dev/null)"
# The cluster is Ready and serves TLS as it should: HTTPS probes, the
# bundle published (its CA's subject contains $1), the SDK through the
# client Service verifying against it, a client without it refused.
check_serving() {
  check "the cluster becomes Ready" kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=300s || give_up
  equal "every broker is Ready (its probes green over HTTPS)" "HTTPS true true true" \
    "$(kubectl get sts "$CLUSTER" -n "$NS" -o jsonpath='{.spec.template.spec.containers[0].readinessProbe.httpGet.scheme}') $(kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$CLUSTER" -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{" "}{end}' | xargs)"
  kubectl get configmap "$CLUSTER-ca-bundle" -n "$NS" -o jsonpath='{.data.ca\.crt}' >"$tmp/ca.crt"
  check "the published bundle is the CA of $1" grep -q "$1" <(openssl x509 -in "$tmp/ca.crt" -noout -subject)
  password=$(kubectl get secret "$CLUSTER-root-credentials" -n "$NS" -o jsonpath='{.data.password}' | base64 -d)
  ip=$(kubectl get svc "$CLUSTER-client" -n "$NS" -o jsonpath='{.spec.clusterIP}')
  domain=$CLUSTER-client.$NS.svc
  url="iggy://iggy:$password@$ip:8090?tls=true&tls_domain=$domain&tls_ca_file=$tmp/ca.crt"
  check "the official SDK verifies the brokers against the bundle, through the client Service" \
    timeout 60 "$EXAMPLES/produce_consume" "$url"
  check "a client that does not trust the CA is refused" \
    refused "iggy://iggy:$password@$ip:8090?tls=true&tls_domain=$domain"
}
refused() { ! timeout 15 "$EXAMPLES/produce_consume" "$1" >/dev/null 2>&1; }

# The serial of the certificate broker $1 serves on its TCP listener.
serving() {
  local pod_ip; pod_ip=$(kubectl get pod "$CLUSTER-$1" -n "$NS" -o jsonpath='{.status.podIP}')
  openssl s_client -connect "$pod_ip:8090" -servername "$domain" -CAfile "$tmp/ca.crt" </dev/null 2>/dev/null |
    openssl x509 -noout -serial
}
restarts() { kubectl get pods -n "$NS" -l app.kubernetes.io/instance="$CLUSTER" -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{" "}{end}' | xargs; }
https_post() { # PATH BODY over HTTPS through the client Service
  local token
  token=$(curl -fs --cacert "$tmp/ca.crt" --resolve "$domain:3000:$ip" -XPOST "https://$domain:3000/users/login" \
    -H 'content-type: application/json' -d "{\"username\":\"iggy\",\"password\":\"$password\"}" | jq -r .access_token.token)
  curl -fs --cacert "$tmp/ca.crt" --resolve "$domain:3000:$ip" -XPOST "https://$domain:3000$1" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$2"
}

# Under a producer of numbered messages (SDK defaults, one long-lived
# connection), run "$@" (which changes the brokers' certificate), then
# wait until every broker serves a new one: no send fails, no broker
# restarts, every acknowledged message is read back once.
replaced_under_producer() {
  local before restarts_before producer
  before=$(serving 0)
  [ -n "$before" ] || { not_ok "broker 0 serves a certificate"; return; }
  restarts_before=$(restarts)
  https_post /streams '{"name":"e2e"}' >/dev/null
  check "a topic of 3 partitions on 3 replicas, over HTTPS" https_post /streams/e2e/topics \
    '{"name":"numbered","partitions_count":3,"compression_algorithm":"none","message_expiry":0,"max_topic_size":0,"replication_factor":3}'
  rm -f "$tmp/stop" "$tmp/acked"
  "$EXAMPLES/numbered" produce "$url" e2e numbered "$tmp/acked" "$tmp/stop" >"$tmp/producer.log" 2>&1 &
  producer=$!
  eventually 60 "the producer's sends are acknowledged" test -s "$tmp/acked" || give_up
  "$@"
  renewed() { local id; for id in 0 1 2; do [ "$(serving "$id")" != "$before" ] || return 1; done; }
  eventually 180 "every broker serves the new certificate (no restart)" renewed
  sleep 3 # a few more sends on the new certificate
  touch "$tmp/stop"; wait "$producer"
  last_line_clean() { tail -1 "$tmp/producer.log" | grep -q ', unknown 0$'; }
  check "the producer's long-lived connection: no send failed" last_line_clean
  tail -1 "$tmp/producer.log" | sed 's/^/    /'
  equal "no broker restarted" "$restarts_before" "$(restarts)"
  check "every acknowledged message is read back once" \
    timeout 180 "$EXAMPLES/numbered" verify "$url" e2e numbered "$tmp/acked"
}

create_cluster "{enabled: true, mode: CertManager, issuerRef: {name: iggy-ca, kind: ClusterIssuer}}"
certificate_ready() {
  kubectl get -n "$NS" "certificate/$CLUSTER-brokers" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
eventually 180 "cert-manager issues the brokers' Certificate" certificate_ready
secret_cert() { kubectl get secret "$CLUSTER-broker-tls" -n "$NS" -o jsonpath='{.data.tls\.crt}' | base64 -d; }
check "issued by the CA ClusterIssuer, naming broker 2's pod" \
  grep -q "DNS:$CLUSTER-2.$CLUSTER-headless.$NS.svc.cluster.local" <(secret_cert | openssl x509 -noout -ext subjectAltName)
check_serving "iggy e2e CA (cert-manager)"

step "a forced renewal through cert-manager under a producer"
force_renewal() {
  local issued; issued=$(secret_cert | openssl x509 -noout -serial)
  kubectl annotate iggy "$CLUSTER" -n "$NS" iggy.rs/renew-certificates=e2e --overwrite >/dev/null
  reissued() { [ "$(secret_cert | openssl x509 -noout -serial)" != "$issued" ]; }
  eventually 120 "cert-manager re-issues the Certificate on request" reissued
}
replaced_under_producer force_renewal
reasons=$(kubectl get events -n "$NS" --field-selector involvedObject.kind=IggyCluster -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
check "Event CertificateRenewalRequested" grep -qw CertificateRenewalRequested <<<"$reasons"
kubectl delete namespace "$NS" --wait=false >/dev/null

step "mode Secret: the user's wildcard certificate, replaced in place under a producer"
NS=iggy-secret-e2e
CLUSTER=own
kubectl delete namespace "$NS" --ignore-not-found --wait --timeout=120s >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=iggy e2e user CA" \
  -keyout "$tmp/user-ca.key" -out "$tmp/user-ca.crt" 2>/dev/null
user_secret() { # a new certificate for every broker of the cluster, from the user's CA
  local sans="DNS:*.$CLUSTER-headless.$NS.svc.cluster.local,DNS:*.$CLUSTER-headless.$NS.svc" form
  for form in "" ".$NS" ".$NS.svc" ".$NS.svc.cluster.local"; do sans="$sans,DNS:$CLUSTER-client$form"; done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$CLUSTER" \
    -keyout "$tmp/user.key" -out "$tmp/user.csr" 2>/dev/null &&
    openssl x509 -req -in "$tmp/user.csr" -CA "$tmp/user-ca.crt" -CAkey "$tmp/user-ca.key" -days 1 \
      -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans") \
      -out "$tmp/user.crt" 2>/dev/null &&
    kubectl create secret generic "$CLUSTER-user-tls" -n "$NS" --from-file=tls.crt="$tmp/user.crt" \
      --from-file=tls.key="$tmp/user.key" --from-file=ca.crt="$tmp/user-ca.crt" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null
}
create_cluster "{enabled: true, mode: Secret, secretName: $CLUSTER-user-tls}"
user_secret
check_serving "iggy e2e user CA"
replaced_under_producer user_secret

kubectl delete namespace "$NS" --wait=false >/dev/null

step "inter-broker TLS switched on, then off, for a running cluster under a producer"
NS=iggy-switch-e2e
CLUSTER=switch
kubectl delete namespace "$NS" --ignore-not-found --wait --timeout=120s >/dev/null
create_cluster
check "a cluster without TLS becomes Ready" kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=300s || give_up
password=$(kubectl get secret "$CLUSTER-root-credentials" -n "$NS" -o jsonpath='{.data.password}' | base64 -d)
ip=$(kubectl get svc "$CLUSTER-client" -n "$NS" -o jsonpath='{.spec.clusterIP}')
url="iggy://iggy:$password@$ip:8090"
http() { # ADDRESS METHOD PATH [BODY]: the admin API over plain HTTP
  local token
  token=$(curl -fs -XPOST "http://$1:3000/users/login" -H 'content-type: application/json' \
    -d "{\"username\":\"iggy\",\"password\":\"$password\"}" | jq -r .access_token.token)
  curl -fs -X"$2" "http://$1:3000$3" -H "Authorization: Bearer $token" -H 'content-type: application/json' ${4:+-d "$4"}
}
http "$ip" POST /streams '{"name":"e2e"}' >/dev/null
check "a topic of 3 partitions on 3 replicas" http "$ip" POST /streams/e2e/topics \
  '{"name":"numbered","partitions_count":3,"compression_algorithm":"none","message_expiry":0,"max_topic_size":0,"replication_factor":3}'
# What every broker says of its replica port (GET /cluster/tls), e.g.
# "off off off".
replica_tls() {
  local id pod_ip
  for id in 0 1 2; do
    pod_ip=$(kubectl get pod "$CLUSTER-$id" -n "$NS" -o jsonpath='{.status.podIP}') || return 1
    http "$pod_ip" GET /cluster/tls | jq -r .replica_tls || return 1
  done | xargs
}
equal "every broker: replica TLS off" "off off off" "$(replica_tls)"
rm -f "$tmp/stop" "$tmp/acked"
"$EXAMPLES/numbered" produce "$url" e2e numbered "$tmp/acked" "$tmp/stop" >"$tmp/producer.log" 2>&1 &
producer=$!
eventually 60 "the producer's sends are acknowledged" test -s "$tmp/acked" || give_up
switched() { # WANTED: every broker reports it and every pod is Ready
  [ "$(replica_tls)" = "$1" ] &&
    kubectl wait -n "$NS" "iggycluster/$CLUSTER" --for=condition=Ready --timeout=1s >/dev/null
}
# What the brokers report along the way, every second.
(while [ ! -f "$tmp/stop" ]; do replica_tls >>"$tmp/replica-tls.log" 2>/dev/null; sleep 1; done) &
watcher=$!
kubectl patch iggycluster -n "$NS" "$CLUSTER" --type merge -p \
  '{"spec":{"tls":{"enabled":true,"listeners":{"tcp":false,"quic":false,"websocket":false,"http":false,"interBroker":true}}}}' >/dev/null
eventually 900 "switched on: every broker requires TLS on the replica port (two rolls)" switched "required required required"
kubectl patch iggycluster -n "$NS" "$CLUSTER" --type json -p '[{"op":"remove","path":"/spec/tls"}]' >/dev/null
eventually 900 "switched off again: every broker speaks plain TCP to its peers (two rolls)" switched "off off off"
acked_before=$(wc -l <"$tmp/acked")
more_acked() { [ "$(wc -l <"$tmp/acked")" -gt $((acked_before + 20)) ]; }
eventually 60 "the producer's sends are acknowledged after the switch" more_acked
touch "$tmp/stop"; wait "$producer" "$watcher"
tail -1 "$tmp/producer.log" | sed 's/^/    /'
check "every acknowledged message is read back once" \
  timeout 180 "$EXAMPLES/numbered" verify "$url" e2e numbered "$tmp/acked"
check "on the way, brokers reported accepting plaintext beside TLS" grep -q "accepting plaintext" "$tmp/replica-tls.log"
uniq "$tmp/replica-tls.log" | sed 's/^/    /' | head -20
switch_events=$(kubectl get events -n "$NS" --field-selector involvedObject.kind=IggyCluster \
  -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}')
for reason in InterBrokerTLSSwitching InterBrokerTLSRequired InterBrokerTLSOff; do
  check "Event $reason" grep -q "^$reason: " <<<"$switch_events" || sed 's/^/    /' <<<"$switch_events"
done

summary tls-modes-e2e
