#!/usr/bin/env bash
# Installs the system packages wireguard-ts needs for its tests, demo and benchmark (Debian, root).
set -euo pipefail
pkgs=(iperf3 wireguard-tools wireguard-go iproute2 tcpdump ncat nftables iptables kubectl procps iputils-ping)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
