#!/usr/bin/env bash
# Host tools the broker's cluster tests use, from Debian's archive when
# missing: iptables (cutting a broker off from its peers, dropping packets at
# random), tc from iproute2 (a rate-limited loopback), curl (readiness of
# scripts/cluster.sh), python3 (choosing free ports). Needs root, like the
# fault tests themselves.
set -euo pipefail
missing=()
command -v iptables >/dev/null || missing+=(iptables)
command -v tc >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
