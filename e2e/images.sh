#!/usr/bin/env bash
# Build the project's container images without a registry and import them
# into the local cluster's containerd:
#   localhost/iggy-broker:<version>, localhost/iggy-operator:<version>
#
# Mirrors broker/Dockerfile and operator/Dockerfile: the host's release
# binary, the shared libraries it links (from the host's Debian, as the
# distroless cc base provides them), non-root user 65532, same environment
# and entrypoint.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/iggy-k8s/target}
version=$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print([p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="iggy-broker"][0])')
out=${E2E_STATE:-/var/lib/iggy-e2e}/images
mkdir -p "$out"

# One build for the images and the SDK example the demo and the e2e tests
# run from this host (one feature set, so nothing is compiled twice).
(cd "$ROOT" && cargo build --release --locked -p iggy-broker --bin iggy-broker -p iggy-operator --bin iggy-operator \
  --example produce_consume --example cluster_tour --example numbered)

# rootfs BINARY NAME: a directory with the binary under /usr/local/bin and
# every shared library it needs at the path the loader expects.
rootfs() {
  local binary=$1 root; root=$(mktemp -d)
  install -D -m 0755 "$binary" "$root/usr/local/bin/$(basename "$binary")"
  for lib in $(ldd "$binary" | grep -oE '/[^ ]+'); do
    install -D -m 0755 "$lib" "$root$lib"
  done
  mkdir -p "$root/tmp" "$root/data" "$root/etc"
  chmod 1777 "$root/tmp"
  chown 65532:65532 "$root/data"
  echo "nonroot:x:65532:65532:nonroot:/data:/sbin/nologin" > "$root/etc/passwd"
  echo "nonroot:x:65532:" > "$root/etc/group"
  echo "$root"
}

broker_root=$(rootfs "$target/release/iggy-broker")
"$HERE/image.sh" "$out/iggy-broker.tar" "localhost/iggy-broker:$version" "$broker_root" \
  '["/usr/local/bin/iggy-broker"]' 65532 IGGY_TCP_ADDRESS=0.0.0.0:8090 IGGY_SYSTEM_PATH=/data
operator_root=$(rootfs "$target/release/iggy-operator")
"$HERE/image.sh" "$out/iggy-operator.tar" "localhost/iggy-operator:$version" "$operator_root" '["/usr/local/bin/iggy-operator"]' 65532
rm -rf "$broker_root" "$operator_root"
"$HERE/k8s.sh" import "$out/iggy-broker.tar" "$out/iggy-operator.tar"
echo "localhost/iggy-broker:$version localhost/iggy-operator:$version"
