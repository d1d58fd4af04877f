#!/usr/bin/env bash
# Pinned chart tooling, built from the Go module proxy (or Debian) and cached
# outside the work tree, like the Kubernetes binaries:
#
#   scripts/tools.sh install   build or reuse helm, kubeconform, controller-gen,
#                              the monitoring.coreos.com CRDs, and install
#                              Debian's prometheus (promtool) without starting it
#                              (and python3-yaml)
#   scripts/tools.sh env       print PATH additions and the schema/CRD dirs
#
# Cache: ${IGGY_TOOLS:-~/.cache/iggy-k8s/tools}/<go version>/<tool>-<version>.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
CONTROLLER_GEN_VERSION=v0.23.0
PROMETHEUS_OPERATOR_VERSION=v0.95.2
# helm's chart rendering defaults to this Kubernetes version when not told.
HELM_K8S_MINOR=33

TOOLS=${IGGY_TOOLS:-$HOME/.cache/iggy-k8s/tools}/$(go env GOVERSION)
HELM_DIR=$TOOLS/helm-$HELM_VERSION
KUBECONFORM_DIR=$TOOLS/kubeconform-$KUBECONFORM_VERSION
CONTROLLER_GEN_DIR=$TOOLS/controller-gen-$CONTROLLER_GEN_VERSION
MONITORING_CRDS=$TOOLS/monitoring-crds-$PROMETHEUS_OPERATOR_VERSION

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

go_install() { # DIR LDFLAGS PACKAGE@VERSION
  local dir=$1 ldflags=$2 pkg=$3 start=$SECONDS
  [ -f "$dir/.complete" ] && return
  log "building $pkg (cold: minutes on 2 cores; cached in $dir)"
  mkdir -p "$dir"
  GOWORK=off CGO_ENABLED=0 GOBIN="$dir" go install -trimpath -ldflags "-s -w $ldflags" "$pkg"
  touch "$dir/.complete"
  log "built $pkg in $((SECONDS - start)) s"
}

install_helm() {
  local v=helm.sh/helm/v3/internal/version ldf
  ldf="-X $v.version=$HELM_VERSION -X $v.gitTreeState=clean"
  # Unstamped, helm assumes Kubernetes 1.20 for .Capabilities.KubeVersion.
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldf="$ldf -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  go_install "$HELM_DIR" "$ldf" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

install_kubeconform() {
  go_install "$KUBECONFORM_DIR" "-X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
}

# ServiceMonitor, PodMonitor and PrometheusRule CRDs, generated from the
# prometheus-operator API types the same way upstream generates them.
install_monitoring_crds() {
  [ -f "$MONITORING_CRDS/.complete" ] && return
  go_install "$CONTROLLER_GEN_DIR" "" "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
  log "generating monitoring.coreos.com CRDs $PROMETHEUS_OPERATOR_VERSION"
  local work; work=$(mktemp -d)
  mkdir -p "$MONITORING_CRDS"
  (cd "$work" && GOWORK=off go mod init iggy-monitoring-crds >/dev/null 2>&1 \
    && GOWORK=off go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1@$PROMETHEUS_OPERATOR_VERSION" \
    && GOWORK=off "$CONTROLLER_GEN_DIR/controller-gen" crd:crdVersions=v1,allowDangerousTypes=true \
      paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
      output:crd:dir="$MONITORING_CRDS")
  rm -rf "$work"
  touch "$MONITORING_CRDS/.complete"
}

# Debian's prometheus (2.42) for promtool and the e2e scrape test, and
# python3-yaml for the schema converter. prometheus' postinst would start the
# daemon through init.d; a policy-rc.d forbids that.
install_packages() {
  command -v promtool >/dev/null && command -v prometheus >/dev/null \
    && /usr/bin/python3 -c 'import yaml' 2>/dev/null && return
  log "installing Debian's prometheus (not started) and python3-yaml"
  local policy=/usr/sbin/policy-rc.d had_policy=0
  [ -e "$policy" ] && had_policy=1
  [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus python3-yaml >/dev/null
  [ "$had_policy" = 1 ] || rm -f "$policy"
}

cmd_install() {
  command -v go >/dev/null || { echo "error: Go is required to build helm and kubeconform" >&2; exit 1; }
  install_kubeconform
  install_helm
  install_monitoring_crds
  install_packages
}

cmd_env() {
  echo "export PATH=$HELM_DIR:$KUBECONFORM_DIR:\$PATH"
  echo "export MONITORING_CRDS=$MONITORING_CRDS"
  echo "export IGGY_TOOLS_DIR=$TOOLS"
}

case "${1:-}" in
  install) cmd_install ;;
  env) cmd_env ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac
