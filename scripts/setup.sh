#!/usr/bin/env bash
# Installs the system packages wireguard-ts needs for its tests, demo and benchmark (Debian, root).
set -euo pipefail
# curl: the simulated cluster scrapes agent metrics; openssl: the test API server's CA and
# certificate (Kubernetes tests skip without either). clang (with libFuzzer in its compiler-rt)
# builds the native fuzz harnesses (npm run fuzz).
need=(iperf3 wireguard-tools wireguard-go iproute2 tcpdump ncat nftables iptables procps iputils-ping
  curl openssl clang)
# Used by one test that checks the fake Kubernetes API server against a real client; that test
# skips without it, so a machine whose package sources lack kubectl still passes.
optional=(kubectl)
# The container image (scripts/image.sh, test/integration/image.test.ts): buildah and mmdebstrap
# build it, binutils strips node; qemu-user-static and the arm64 libc/libstdc++ run the arm64 node
# (--arch arm64 also needs gcc-aarch64-linux-gnu, which CI does not install).
need+=(buildah mmdebstrap binutils qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do
  command -v "$p" >/dev/null 2>&1 || dpkg -s "$p" >/dev/null 2>&1 || missing_optional+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_optional[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for p in "${missing_optional[@]}"; do
  apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
    echo "setup: optional package $p is not available; the test that uses it will skip" >&2
done
# qemu-user-static registers its binfmt_misc handlers where binfmt_misc is mounted; mount it when
# it is not (containers), so arm64 binaries run for `npm run image -- --arch arm64`.
if ! [ -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [ -e /proc/sys/fs/binfmt_misc/status ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
