#!/usr/bin/env bash
# Build a container image from a root filesystem directory with Debian's
# buildah (no registry, no base image) and save it as a docker-archive that
# containerd imports under its fully qualified name.
#
#   e2e/image.sh ARCHIVE.tar NAME:TAG ROOTFS_DIR ENTRYPOINT [USER [KEY=VALUE...]]
#
# ENTRYPOINT is a JSON array, e.g. '["/pause"]'. USER defaults to 65532
# (non-root); KEY=VALUE pairs become the image's environment.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 ARCHIVE NAME:TAG ROOTFS ENTRYPOINT [USER]" >&2; exit 2; }
archive=$1 name=$2 rootfs=$3 entrypoint=$4 user=${5:-65532}
shift $(( $# < 5 ? $# : 5 ))
env_flags=()
for kv in "$@"; do env_flags+=(--env "$kv"); done
[[ "$name" == *:* && "$name" != *:latest ]] || { echo "image $name needs an explicit, non-latest tag" >&2; exit 2; }
# vfs keeps buildah independent of the host's overlay/fuse setup; images are small.
b=(buildah --storage-driver vfs)
ctr=$("${b[@]}" from scratch)
trap '"${b[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
"${b[@]}" copy --quiet "$ctr" "$rootfs" / >/dev/null
"${b[@]}" config --entrypoint "$entrypoint" --cmd '' --user "$user" --workingdir / "${env_flags[@]}" "$ctr"
"${b[@]}" commit --quiet "$ctr" "$name" >/dev/null
rm -f "$archive"
"${b[@]}" push --quiet "$name" "docker-archive:$archive:$name" >/dev/null
"${b[@]}" rmi "$name" >/dev/null 2>&1 || true
