#!/usr/bin/env bash
# Smoke test of the local cluster: a pod runs from a locally built image,
# resolves kubernetes.default through CoreDNS, and reaches a ClusterIP
# Service backed by another pod. Works against any cluster in $KUBECONFIG
# that has the localhost/busybox:e2e image.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${KUBECONFIG:-}" ] || eval "$("$HERE/k8s.sh" env)"
kubectl() { "$("$HERE/k8s.sh" bin)/kubectl" "$@"; }
ns=iggy-e2e-smoke
start=$SECONDS
pass() { echo "ok - $*"; }

kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$ns" >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT

kubectl apply -n "$ns" -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: localhost/busybox:e2e
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /tmp/www && echo smoke-ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
YAML
kubectl wait -n "$ns" --for=condition=Ready pod/web --timeout=120s >/dev/null
pass "pod from a local image is Ready"

kubectl apply -n "$ns" -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  restartPolicy: Never
  containers:
  - name: client
    image: localhost/busybox:e2e
    imagePullPolicy: Never
    # busybox-static's wget crashes as a non-root user (static glibc NSS);
    # nc speaks the HTTP request just as well.
    command: [sh, -c, 'nslookup kubernetes.default.svc.cluster.local && printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 web.iggy-e2e-smoke.svc.cluster.local 80']
YAML
if ! kubectl wait -n "$ns" --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=120s >/dev/null; then
  kubectl logs -n "$ns" client || true
  kubectl describe -n "$ns" pod/client | tail -20 || true
  echo "not ok - client pod did not succeed"; exit 1
fi
out=$(kubectl logs -n "$ns" client)
echo "$out" | grep -q "Address: 10.96.0.1" || { echo "$out"; echo "not ok - DNS"; exit 1; }
pass "kubernetes.default.svc.cluster.local resolves to 10.96.0.1 through CoreDNS"
echo "$out" | grep -q "smoke-ok" || { echo "$out"; echo "not ok - ClusterIP"; exit 1; }
pass "a ClusterIP Service is reachable from a pod"
# From the host too (tests and the demo connect to ClusterIPs from here).
ip=$(kubectl get service -n "$ns" web -o jsonpath='{.spec.clusterIP}')
out=$(curl -fsS --max-time 10 "http://$ip/" 2>&1 || true)
echo "$out" | grep -q "smoke-ok" || { echo "$out"; echo "not ok - ClusterIP from the host"; exit 1; }
pass "a ClusterIP Service is reachable from the host"

# Nothing addressed to the cluster's ranges may take the default route off
# this machine, whether or not a pod or Service holds the address.
route_of() { { ip route get "$1" 2>&1 || true; } | head -1; }
unused_service=$(route_of 10.96.255.254)
case "$unused_service" in
  *"dev cni0"*) pass "the Service range is routed to the pods' bridge, not off the machine" ;;
  *) echo "not ok - the Service range leaves by: $unused_service"; exit 1 ;;
esac
unused_pod=$(route_of 10.244.200.1)
case "$unused_pod" in
  *blackhole* | *unreachable* | *"Invalid argument"*) pass "pod addresses beyond the bridge are dropped, not routed off the machine" ;;
  *) echo "not ok - an unused pod address leaves by: $unused_pod"; exit 1 ;;
esac
echo "smoke: 6 passed, 0 failed ($((SECONDS - start)) s)"
