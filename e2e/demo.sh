#!/usr/bin/env bash
# `make demo`: a local Kubernetes (or the cluster in $KUBECONFIG), the broker
# deployed on it, and messages produced and consumed through the cluster's
# client Service with the official iggy SDK.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
step() { printf '\n\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }

if [ -n "${KUBECONFIG:-}" ] && "$("$HERE/k8s.sh" bin)/kubectl" version --request-timeout=5s >/dev/null 2>&1; then
  step "using the cluster in KUBECONFIG=$KUBECONFIG (images must be loadable into its nodes)"
else
  step "bringing up the local single-node Kubernetes (first run builds it: ~20 min)"
  "$HERE/k8s.sh" up
  eval "$("$HERE/k8s.sh" env)"
fi
kubectl() { "$("$HERE/k8s.sh" bin)/kubectl" "$@"; }

step "building the broker image without a registry and importing it"
images=$("$HERE/images.sh" | tail -1)
broker_image=${images%% *}

step "deploying the broker ($broker_image) with a plain manifest"
password=$(openssl rand -hex 16)
BROKER_IMAGE=$broker_image ROOT_PASSWORD=$password envsubst < "$HERE/manifests/broker-standalone.yaml" | kubectl apply -f - >/dev/null
# The password lives in the Secret; a re-run keeps the first one.
password=$(kubectl get secret -n iggy-demo iggy-root -o jsonpath='{.data.password}' | base64 -d)
kubectl rollout status -n iggy-demo statefulset/iggy --timeout=180s
ip=$(kubectl get service -n iggy-demo iggy-client -o jsonpath='{.spec.clusterIP}')

step "producing and consuming through Service iggy-demo/iggy-client ($ip:8090)"
(cd "$ROOT" && cargo run --quiet --release --locked -p iggy-broker --example produce_consume -- "iggy://iggy:$password@$ip:8090")

cat <<TXT

Connect any official Iggy SDK through the client Service:
  inside the cluster:  iggy://iggy:<password>@iggy-client.iggy-demo.svc.cluster.local:8090
  from this machine:   iggy://iggy:<password>@$ip:8090
  password:            kubectl get secret -n iggy-demo iggy-root -o jsonpath='{.data.password}' | base64 -d
  kubectl:             $("$HERE/k8s.sh" env)
Stop the local cluster with: e2e/k8s.sh down
TXT
