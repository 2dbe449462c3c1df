#!/usr/bin/env bash
# Copies into OUT the part of the Debian root file system FULL that the image's runtime uses,
# as a distroless image does: the commands the containers run, the libraries they and the
# image's node load (ELF interpreter and NEEDED entries, transitively), CA certificates, the
# account and name-service files, and the copyright of every package a kept file came from.
# No package manager, no perl, nothing that nothing runs: 65 -> ~9 MB.
# scripts/image.sh runs it on the mmdebstrap tree, deploy/Dockerfile on a Debian stage's own /.
# Usage: image-rootfs.sh FULL OUT NODE_BINARY amd64|arm64
set -euo pipefail

full="${1:?usage: image-rootfs.sh FULL OUT NODE_BINARY ARCH}"
out="${2:?}"
node_bin="${3:?}"
arch="${4:?}"
full="${full%/}" # "/" becomes "", so "$full/$rel" is always the file
case "$arch" in
  amd64) triplet=x86_64-linux-gnu ;;
  arm64) triplet=aarch64-linux-gnu ;;
  *) echo "image-rootfs: arch must be amd64 or arm64, not $arch" >&2; exit 2 ;;
esac
say() { echo "image-rootfs: $*" >&2; }

# The daemon container's script (sh, ip, sleep), the agent's commands (ip, wg), `env` for the
# entrypoint's #!, and ls, cat, find, xargs to look inside a running pod.
commands=(usr/bin/dash usr/bin/sh usr/bin/env usr/bin/sleep usr/bin/ls usr/bin/cat
  usr/bin/find usr/bin/xargs usr/bin/ip usr/bin/wg)

mkdir -p "$out"
# Merged /usr: the top-level links (bin -> usr/bin, lib -> usr/lib, ...).
for f in bin sbin lib lib64; do
  if [ -L "$full/$f" ]; then cp -a "$full/$f" "$out/"; fi
done

declare -A kept=()
# Copies `rel` (a path under FULL) into OUT with its directories resolved, and what a link
# points to, as links are.
keep() {
  local rel="$1" dir target
  dir="$(realpath "$full/$(dirname "$rel")")"
  case "$dir/" in "$full"/*) ;; *) say "$rel leaves the root file system"; exit 1 ;; esac
  rel="${dir#"$full"}/$(basename "$rel")"
  rel="${rel#/}"
  [ -z "${kept[$rel]:-}" ] || return 0
  kept[$rel]=1
  if ! [ -e "$full/$rel" ] && ! [ -L "$full/$rel" ]; then
    say "missing in the root file system: /$rel"
    exit 1
  fi
  mkdir -p "$out/$(dirname "$rel")"
  cp -a "$full/$rel" "$out/$rel"
  if [ -L "$full/$rel" ]; then
    target="$(readlink "$full/$rel")"
    case "$target" in
      /*) keep "${target#/}" ;;
      *) keep "$(dirname "$rel")/$target" ;;
    esac
  fi
}

# The interpreter and the NEEDED libraries of the ELF file at `file` (any path), transitively.
libs_of() {
  local file="$1" interp lib d
  readelf -h "$file" >/dev/null 2>&1 || return 0
  interp="$(readelf -lW "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
  if [ -n "$interp" ]; then keep "${interp#/}"; fi
  for lib in $(readelf -dW "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    for d in "usr/lib/$triplet" "lib/$triplet" usr/lib; do
      if [ -e "$full/$d/$lib" ]; then
        if [ -z "${kept[$d/$lib]:-}" ]; then
          keep "$d/$lib"
          libs_of "$(realpath "$full/$d/$lib")"
        fi
        continue 2
      fi
    done
    say "$file needs $lib, which is not in the root file system"
    exit 1
  done
}

for f in "${commands[@]}"; do
  keep "$f"
  libs_of "$(realpath "$full/$f")"
done
libs_of "$node_bin"
for f in etc/passwd etc/group etc/nsswitch.conf etc/host.conf etc/os-release \
  etc/ssl/certs/ca-certificates.crt; do
  if [ -e "$full/$f" ]; then keep "$f"; fi
done
# The copyright of every package owning a kept file (dpkg lists /bin/ip or /usr/bin/ip).
for f in "${!kept[@]}"; do
  for p in "/$f" "/${f#usr/}"; do
    grep -lxF -- "$p" "$full"/var/lib/dpkg/info/*.list 2>/dev/null || true
  done
done | sed 's|.*/||; s|\.list$||; s|:.*||' | sort -u | while read -r p; do
  if [ -e "$full/usr/share/doc/$p/copyright" ]; then keep "usr/share/doc/$p/copyright"; fi
done
mkdir -p "$out"/{tmp,root,run,dev,proc,sys,var/lib/wireguard-ts,var/tmp}
chmod 1777 "$out/tmp" "$out/var/tmp"
chmod 700 "$out/root"
# Relative, unlike Debian's: a runtime that mounts the service account at /var/run/secrets
# without resolving links inside the image (buildah's chroot isolation) would otherwise follow
# /run on the host.
ln -sfn ../run "$out/var/run"
say "kept $(du -sh "$out" | cut -f1)"
