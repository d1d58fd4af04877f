#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, built from upstream sources.
#
#   e2e/k8s.sh build   build (or reuse from the cache) kube-apiserver,
#                      kube-controller-manager, kube-scheduler, kubelet,
#                      kube-proxy, kubectl, CoreDNS and the pause image
#   e2e/k8s.sh up      install the runtime packages, then start containerd,
#                      etcd, the control plane, the kubelet, kube-proxy and
#                      CoreDNS, each waited for with a bound
#   e2e/k8s.sh down    stop everything `up` started (by recorded PID, never by
#                      name) and remove its state: mounts, interfaces,
#                      iptables chains, CNI leases, cgroups
#   e2e/k8s.sh env     print `export KUBECONFIG=...`
#   e2e/k8s.sh import IMAGE.tar...   load image archives into containerd
#   e2e/k8s.sh prometheus CONFIG      start a Prometheus on the host
#
# `up` and `down` are idempotent: `up` first cleans whatever an earlier run
# left behind. Built binaries are cached outside the work tree, keyed by the
# Kubernetes version, the Go version and the wrapper module's go.sum.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=${K8S_VERSION:-v1.33.13}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
PAUSE_IMAGE=registry.k8s.io/pause:3.10
STATE=${E2E_STATE:-/var/lib/iggy-e2e}
RUN=$STATE/run
PKI=$STATE/pki
NODE=$(hostname | tr 'A-Z' 'a-z')
NODE_IP=${E2E_NODE_IP:-$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')}
# The node's zone. The API server copies a node's zone label onto pods as
# they are bound (PodTopologyLabelsAdmission), which is how brokers learn
# their zone: topology.kubernetes.io/zone from Kubernetes 1.35 on, the
# alpha name topology.k8s.io/zone in 1.33-1.34 (which this version is), so
# the node carries both.
NODE_ZONE=local-a
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
# kube-proxy's clusterCIDR: every pod address this cluster could use.
POD_SUPERNET=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
WAIT_SECONDS=${E2E_WAIT_SECONDS:-120}

go_sum_hash() { sha256sum "$HERE/k8s/go.sum" | cut -c1-12; }
cache_dir() {
  echo "${E2E_CACHE:-$HOME/.cache/iggy-k8s/k8s}/$K8S_VERSION-coredns$COREDNS_VERSION-$(go env GOVERSION)-$(go_sum_hash)"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- build ----

cmd_build() {
  command -v go >/dev/null || die "Go is required to build Kubernetes (go 1.24+)"
  local bin; bin=$(cache_dir)
  if [ -f "$bin/.complete" ]; then
    log "Kubernetes $K8S_VERSION binaries cached in $bin"
    return
  fi
  mkdir -p "$bin"
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf="$ldf -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "building Kubernetes $K8S_VERSION from k8s.io/kubernetes (cold: ~15-25 min on 2 cores)"
  local start=$SECONDS
  (cd "$HERE/k8s" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldf" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  log "Kubernetes built in $((SECONDS - start)) s; building CoreDNS $COREDNS_VERSION"
  GOWORK=off CGO_ENABLED=0 GOBIN="$bin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  # The pause container, from the same Kubernetes source as the kubelet.
  local src; src=$(cd "$HERE/k8s" && GOWORK=off go list -m -f '{{.Dir}}' k8s.io/kubernetes)
  gcc -Os -static -DVERSION=3.10 -o "$bin/pause" "$src/build/pause/linux/pause.c"
  strip "$bin/pause"
  touch "$bin/.complete"
  log "all binaries built in $((SECONDS - start)) s into $bin"
}

# ----------------------------------------------------------- host setup ----

install_packages() {
  local missing=()
  for pkg in containerd runc containernetworking-plugins etcd-server iptables conntrack buildah busybox-static openssl curl gettext-base; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  # Keep package scripts from starting system services (etcd, containerd):
  # this script starts and stops its own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

# Test traffic never leaves this machine: a packet to the pod or Service
# ranges stays on the pods' bridge or is dropped, even before the CNI plugin
# made the bridge or kube-proxy wrote its rules.
# - The bridge is made here (the CNI bridge plugin adopts it) with its
#   gateway address, so the pod subnet's route exists from the start.
# - The Service range is routed to the bridge, not blackholed: a host
#   connection to a ClusterIP first needs a route (a blackhole would fail it
#   before kube-proxy's DNAT sends it to a pod); without kube-proxy it goes
#   nowhere but the bridge.
# - The pod supernet is blackholed; the bridge's more specific /24 wins for
#   the addresses pods actually get.
guard_routes() {
  ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge
  ip addr replace "$POD_GATEWAY/${POD_CIDR#*/}" dev cni0
  ip link set cni0 up
  ip route replace "$SERVICE_CIDR" dev cni0 src "$POD_GATEWAY"
  ip route replace blackhole "$POD_SUPERNET"
}

unguard_routes() {
  ip route del blackhole "$POD_SUPERNET" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev cni0 2>/dev/null || true
}

prepare_host() {
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || { modprobe br_netfilter 2>/dev/null || true; sysctl -qw net.bridge.bridge-nf-call-iptables=1; }
  sysctl -qw net.bridge.bridge-nf-call-ip6tables=1 || true
  sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288
  # Without systemd, / is a private mount; volume mount propagation needs it shared.
  mount --make-rshared /
}

# ------------------------------------------------------------------ PKI ----

gen_cert() { # name CN O ext(server|client) [SANs]
  local name=$1 cn=$2 org=$3 kind=$4 sans=${5:-}
  [ -f "$PKI/$name.crt" ] && return
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ "$kind" = server ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; else echo "extendedKeyUsage=clientAuth"; fi
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$ext"
  local subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org/CN=$cn"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 7 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
}

kubeconfig() { # name cert
  local name=$1 cert=$2 kc=$STATE/$1.kubeconfig
  [ -f "$kc" ] && return
  local kubectl; kubectl="$(cache_dir)/kubectl"
  "$kubectl" config set-cluster local --server=https://127.0.0.1:6443 --certificate-authority="$PKI/ca.crt" --embed-certs --kubeconfig="$kc" >/dev/null
  "$kubectl" config set-credentials "$name" --client-certificate="$PKI/$cert.crt" --client-key="$PKI/$cert.key" --embed-certs --kubeconfig="$kc" >/dev/null
  "$kubectl" config set-context default --cluster=local --user="$name" --kubeconfig="$kc" >/dev/null
  "$kubectl" config use-context default --kubeconfig="$kc" >/dev/null
}

make_pki() {
  # Reuse certificates across runs only while they are valid for another day
  # and were made for this node's name and address.
  if [ -f "$PKI/ca.crt" ]; then
    if ! openssl x509 -checkend 86400 -noout -in "$PKI/ca.crt" >/dev/null \
      || [ "$(cat "$PKI/node" 2>/dev/null)" != "$NODE $NODE_IP" ]; then
      log "certificates expiring or made for another node: regenerating"
      rm -rf "$PKI" "$STATE"/*.kubeconfig
    fi
  fi
  mkdir -p "$PKI"
  echo "$NODE $NODE_IP" > "$PKI/node"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -subj "/CN=iggy-e2e-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  fi
  [ -f "$PKI/sa.key" ] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  gen_cert apiserver kube-apiserver "" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,IP:$NODE_IP"
  gen_cert admin admin system:masters client
  gen_cert controller-manager system:kube-controller-manager "" client
  gen_cert scheduler system:kube-scheduler "" client
  gen_cert proxy system:kube-proxy "" client
  gen_cert kubelet "system:node:$NODE" system:nodes server "DNS:$NODE,IP:$NODE_IP,IP:127.0.0.1"
  gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client "" client
  gen_cert coredns coredns "" client
  for pair in admin:admin controller-manager:controller-manager scheduler:scheduler proxy:proxy kubelet:kubelet coredns:coredns; do
    kubeconfig "${pair%%:*}" "${pair##*:}"
  done
}

# ------------------------------------------------------ process control ----

# start NAME COMMAND...: run in the background, log and PID under $RUN.
start() {
  local name=$1; shift
  log "starting $name"
  nohup "$@" >"$RUN/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
}

# wait_for NAME DESCRIPTION COMMAND...: poll until COMMAND succeeds, up to
# $WAIT_SECONDS; on timeout print the component's log tail and fail.
wait_for() {
  local name=$1 what=$2; shift 2
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$RUN/$name.pid" ] && ! kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
      echo "---- $name exited; last log lines:" >&2; tail -n 40 "$RUN/$name.log" >&2 || true
      die "$name died before $what"
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "---- $name: last log lines:" >&2; tail -n 40 "$RUN/$name.log" >&2 || true
      die "timed out after ${WAIT_SECONDS}s waiting for $what"
    fi
    sleep 1
  done
}

stop() { # NAME: SIGTERM, then SIGKILL after 10 s; only the recorded PID.
  local name=$1 pidfile=$RUN/$1.pid
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

kctl() { "$(cache_dir)/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# ------------------------------------------------------------ components ----

write_configs() {
  mkdir -p "$STATE/containerd" "$STATE/cni" "$STATE/kubelet"
  local restrict_oom=false
  if ! (echo -1 > /proc/self/oom_score_adj) 2>/dev/null; then restrict_oom=true; fi
  cat > "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine's root lacks CAP_SYS_RESOURCE, so the negative OOM scores
  # the kubelet asks for (-998 for sandboxes) cannot be set: clamp them to
  # containerd's own score instead of failing every pod.
  restrict_oom_score_adj = $restrict_oom
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
EOF
  # A CNI directory of our own: containerd loads the first file by name, and
  # the host's /etc/cni/net.d is left alone.
  cat > "$STATE/cni/10-iggy-e2e.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "iggy-e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  cat > "$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$RUN/containerd.sock
failSwapOn: false
failCgroupV1: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
resolvConf: $STATE/resolv.conf
EOF
  # Pods must never reach resolvers outside the machine.
  echo "nameserver $DNS_IP" > "$STATE/resolv.conf"
  cat > "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: $NODE
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 1s}
EOF
  cat > "$STATE/Corefile" <<EOF
.:53 {
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig default
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF
}

bootstrap_objects() {
  kctl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: iggy-e2e:apiserver-kubelet-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: iggy-e2e:coredns}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: iggy-e2e:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: iggy-e2e:coredns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: coredns}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-host, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
endpoints: [{addresses: ["$NODE_IP"], conditions: {ready: true}}]
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
EOF
}

# Persistent volumes without a provisioner: a default StorageClass that
# binds when a pod is scheduled, and E2E_VOLUMES hostPath PersistentVolumes
# under $STATE/volumes (owned by the images' user 65532, since fsGroup does
# not apply to hostPath). Released volumes are not reused; `up` starts fresh.
local_volumes() {
  local count=${E2E_VOLUMES:-30} i
  rm -rf "$STATE/volumes"
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
    for i in $(seq 1 "$count"); do
      install -d -m 0770 -o 65532 -g 65532 "$STATE/volumes/pv-$i"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv-$i}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  hostPath: {path: $STATE/volumes/pv-$i, type: Directory}
EOF
    done
  } | kctl apply -f - >/dev/null
}

cmd_import() {
  for archive in "$@"; do
    ctr --address "$RUN/containerd.sock" -n k8s.io images import --all-platforms "$archive" >/dev/null
  done
}

# Build the images every cluster needs (pause, busybox) as archives; prints
# their paths.
base_images() {
  local bin; bin=$(cache_dir)
  # Kept with the binaries they are made from.
  local out=$bin/images; mkdir -p "$out"
  if [ ! -f "$out/pause.tar" ]; then
    local root; root=$(mktemp -d)
    install -m 0755 "$bin/pause" "$root/pause"
    "$HERE/image.sh" "$out/pause.tar" "$PAUSE_IMAGE" "$root" '["/pause"]' 65535 >&2
    rm -rf "$root"
  fi
  if [ ! -f "$out/busybox.tar" ]; then
    local root; root=$(mktemp -d)
    mkdir -p "$root/bin"
    install -m 0755 /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"; done
    "$HERE/image.sh" "$out/busybox.tar" localhost/busybox:e2e "$root" '["/bin/sh"]' 65532 >&2
    rm -rf "$root"
  fi
  echo "$out/pause.tar" "$out/busybox.tar"
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  cmd_build
  install_packages
  cmd_down quiet
  local bin; bin=$(cache_dir)
  mkdir -p "$RUN"
  prepare_host
  guard_routes
  make_pki
  write_configs
  local start=$SECONDS

  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd "containerd's CRI plugin" sh -c "ctr --address $RUN/containerd.sock plugins ls | grep -q 'io.containerd.grpc.v1.*cri.*ok'"
  log "importing the pause and busybox images"
  # shellcheck disable=SC2046
  cmd_import $(base_images)

  start etcd etcd --name e2e --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster e2e=http://127.0.0.1:2380 \
    --unsafe-no-fsync
  wait_for etcd "etcd health" curl -fs http://127.0.0.1:2379/health

  start kube-apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
    --service-cluster-ip-range="$SERVICE_CIDR" --client-ca-file="$PKI/ca.crt" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --feature-gates=PodTopologyLabelsAdmission=true \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP
  wait_for kube-apiserver "the API server to be ready" curl -fsk https://127.0.0.1:6443/readyz
  bootstrap_objects
  local_volumes

  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --use-service-account-credentials --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" --leader-elect=false --bind-address=127.0.0.1 \
    --service-cluster-ip-range="$SERVICE_CIDR"
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" --leader-elect=false --bind-address=127.0.0.1
  wait_for kube-controller-manager "controller-manager health" curl -fsk https://127.0.0.1:10257/healthz
  wait_for kube-scheduler "scheduler health" curl -fsk https://127.0.0.1:10259/healthz
  wait_for kube-controller-manager "the default service account" kctl get serviceaccount default -n default

  start kubelet "$bin/kubelet" --config="$STATE/kubelet/config.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --hostname-override="$NODE" --node-ip="$NODE_IP" --root-dir=/var/lib/kubelet \
    --node-labels="topology.kubernetes.io/zone=$NODE_ZONE"
  wait_for kubelet "kubelet health" curl -fs http://127.0.0.1:10248/healthz

  start kube-proxy "$bin/kube-proxy" --config="$STATE/kube-proxy.yaml"
  wait_for kube-proxy "kube-proxy health" curl -fs http://127.0.0.1:10256/healthz
  wait_for kube-proxy "the kubernetes Service rules" sh -c "iptables -t nat -S | grep -q 'default/kubernetes:https'"

  start coredns "$bin/coredns" -conf "$STATE/Corefile"
  wait_for coredns "CoreDNS ready" curl -fs http://127.0.0.1:18181/ready
  wait_for kubelet "node $NODE Ready" sh -c "$(printf '%q ' "$bin/kubectl") --kubeconfig $STATE/admin.kubeconfig get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
  # The kubelet may not set k8s.io labels on itself; the admin does.
  kctl label node "$NODE" --overwrite "topology.k8s.io/zone=$NODE_ZONE" >/dev/null
  log "cluster up in $((SECONDS - start)) s; control plane RSS: $(control_plane_rss_mb) MiB"
  cmd_env
}

control_plane_rss_mb() {
  local total=0
  for name in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    [ -f "$RUN/$name.pid" ] || continue
    local kb; kb=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$RUN/$name.pid")/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}

cmd_down() {
  local quiet=${1:-}
  [ -d "$STATE" ] || return 0
  [ -n "$quiet" ] || log "stopping the local cluster"
  local bin; bin=$(cache_dir)
  mkdir -p "$RUN"
  stop prometheus
  rm -rf "$STATE/prometheus"
  # Pods first, through the kubelet, so their containers and mounts go away.
  if [ -f "$RUN/kubelet.pid" ] && kill -0 "$(cat "$RUN/kubelet.pid")" 2>/dev/null && [ -x "$bin/kubectl" ]; then
    kctl delete pods --all -A --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
  fi
  stop coredns
  if [ -f "$RUN/kube-proxy.pid" ]; then
    stop kube-proxy
    "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  stop kube-scheduler
  stop kube-controller-manager
  stop kubelet
  # Remaining pod sandboxes and containers, then containerd itself.
  if [ -S "$RUN/containerd.sock" ] && [ -f "$RUN/containerd.pid" ]; then
    local ctr_cmd=(ctr --address "$RUN/containerd.sock" -n k8s.io)
    for task in $("${ctr_cmd[@]}" tasks ls -q 2>/dev/null); do
      "${ctr_cmd[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    sleep 1
    for task in $("${ctr_cmd[@]}" tasks ls -q 2>/dev/null); do "${ctr_cmd[@]}" tasks delete -f "$task" >/dev/null 2>&1 || true; done
    for c in $("${ctr_cmd[@]}" containers ls -q 2>/dev/null); do "${ctr_cmd[@]}" containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  # containerd shims outlive containerd; they hold the sockets under $RUN.
  for pid in $(ps -eo pid,args | awk -v run="$RUN" '$0 ~ "containerd-shim" && $0 ~ run {print $1}'); do kill -9 "$pid" 2>/dev/null || true; done
  stop kube-apiserver
  stop etcd
  # Mounts, network, iptables and cgroups left by pods.
  { grep -E " (/var/lib/kubelet|$RUN|$STATE/containerd|/run/containerd)" /proc/mounts || true; } | awk '{print $2}' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for ns in $({ ip netns list 2>/dev/null || true; } | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  unguard_routes
  ip link delete cni0 2>/dev/null || true
  rm -rf /var/lib/cni/networks/iggy-e2e /var/lib/cni/results
  for table in nat filter mangle; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    { iptables -t "$table" -S 2>/dev/null || true; } | { grep -E '^-A .*(KUBE-|CNI-)' || true; } | sed 's/^-A/-D/' | while read -r rule; do
      eval "iptables -t $table $rule" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  for controller in /sys/fs/cgroup/*/; do
    [ -d "$controller/kubepods" ] || continue
    find "$controller/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf /var/lib/kubelet "$STATE/etcd" "$STATE/containerd" "$RUN" "$STATE/kubelet" "$STATE/cni" \
    "$STATE/volumes" /run/containerd/runc/k8s.io
  [ -n "$quiet" ] || log "stopped; state removed (PKI kept in $STATE)"
}

cmd_env() { echo "export KUBECONFIG=$STATE/admin.kubeconfig"; }

# A Prometheus on the host (Debian's package; it has no Kubernetes service
# discovery, so CONFIG lists targets by file) on 127.0.0.1:$PROMETHEUS_PORT,
# stopped by `down` like every other component.
PROMETHEUS_PORT=19090
cmd_prometheus() {
  local config=${1:?usage: k8s.sh prometheus CONFIG}
  mkdir -p "$RUN" "$STATE/prometheus"
  stop prometheus
  rm -rf "$STATE/prometheus/data"
  promtool check config "$config" >/dev/null || die "invalid Prometheus configuration $config"
  start prometheus prometheus --config.file="$config" --storage.tsdb.path="$STATE/prometheus/data" \
    --storage.tsdb.retention.time=1h --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --web.enable-lifecycle
  wait_for prometheus "Prometheus ready" curl -fs "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  import) shift; cmd_import "$@" ;;
  kubectl) shift; kctl "$@" ;;
  bin) cache_dir ;;
  prometheus) shift; cmd_prometheus "$@" ;;
  *) echo "usage: $0 build|up|down|env|import IMAGE.tar...|kubectl ARGS...|bin|prometheus CONFIG" >&2; exit 2 ;;
esac
