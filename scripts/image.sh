#!/usr/bin/env bash
# Builds the wireguard-ts OCI image with buildah: no Docker engine, no base image pulled.
# The root file system comes from Debian's packages (mmdebstrap), Node.js from the npm registry's
# node-linux-<arch> package, the project is compiled here and copied in (see image.Containerfile
# for the layers). Run as root: npm run image [-- options].
set -euo pipefail

usage() {
  cat <<'EOF'
usage: npm run image -- [options]
  --arch amd64|arm64     target architecture (default amd64; arm64 needs qemu-user-static and
                         gcc-aarch64-linux-gnu)
  --oci-archive FILE     also write the image to FILE as an OCI archive (for skopeo, ctr import)
  --tag NAME             image name (default localhost/wireguard-ts:VERSION, -arm64 appended
                         for arm64)
  --refresh              rebuild the cached Debian root file system (picks up security updates)
  --check                only say whether this machine can build the image, then exit
  -h, --help             this text
EOF
}

arch=amd64
archive=''
tag=''
refresh=0
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
    --arch=*) arch="${1#*=}"; shift ;;
    --oci-archive) archive="${2:?--oci-archive needs a file}"; shift 2 ;;
    --oci-archive=*) archive="${1#*=}"; shift ;;
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --refresh) refresh=1; shift ;;
    --check) check=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "image: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

case "$arch" in
  amd64) node_arch=x64 cross_cc='' qemu='' ;;
  arm64) node_arch=arm64 cross_cc=aarch64-linux-gnu-gcc qemu=qemu-aarch64-static ;;
  *) echo "image: --arch must be amd64 or arm64, not $arch" >&2; exit 2 ;;
esac

# Runs a target binary here: arm64 ones under qemu-user, with the cross toolchain's libc.
target=()
[ "$arch" = amd64 ] || target=(env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu)
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(node -p "require('$root/package.json').version")"
# The Node.js the image runs: the addon is compiled against this version's own headers.
node_version="${WG_TS_IMAGE_NODE:-20.20.2}"
suite=bookworm
# iproute2: links, addresses, routes, rules (src/control); wireguard-tools: `wg` for the kernel
# backend and the probe in the daemon container; ca-certificates: TLS to the API server;
# libstdc++6: node's one library beyond libc. No nftables: src/control never runs nft.
packages=(iproute2 wireguard-tools ca-certificates libstdc++6)
cache="${WG_TS_IMAGE_CACHE:-/var/cache/wireguard-ts-image}/$arch"
[ -n "$tag" ] || tag="localhost/wireguard-ts:$version$([ "$arch" = amd64 ] || echo "-$arch")"

# Why this machine cannot build, or nothing.
missing() {
  [ "$(id -u)" = 0 ] || { echo "needs root (mmdebstrap and buildah run as root)"; return; }
  local t
  for t in buildah mmdebstrap npm tar strip ${cross_cc:+"$cross_cc"} ${qemu:+"$qemu"}; do
    command -v "$t" >/dev/null || { echo "$t is not installed (scripts/setup.sh installs it)"; return; }
  done
  if [ -n "$qemu" ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "no binfmt_misc entry for qemu-aarch64 (mount binfmt_misc, update-binfmts --enable)"
  fi
}
why="$(missing)"
if [ "$check" = 1 ]; then
  [ -z "$why" ] && { echo "image: can build $tag"; exit 0; }
  echo "image: cannot build: $why"; exit 3
fi
[ -z "$why" ] || { echo "image: cannot build: $why" >&2; exit 3; }

# Everything the image is made of; an image already labelled with this hash is not rebuilt.
inputs="$( (
  cd "$root"
  echo "$arch $node_version $version"
  find src bin binding.gyp package.json package-lock.json tsconfig.json scripts/image.sh \
    scripts/image.Containerfile scripts/image-rootfs.sh scripts/image-minify.mjs -type f ! -path 'src/lab/*' -print0 | sort -z | xargs -0 sha256sum
) | sha256sum | cut -c1-16)"
have="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.wireguard-ts.inputs"}}' \
  "$tag" 2>/dev/null || true)"
if [ "$have" = "$inputs" ] && [ "$refresh" = 0 ]; then
  echo "image: $tag is up to date ($(buildah images --format '{{.Size}}' "$tag" | head -1))" >&2
  build=0
else
  build=1
fi

mkdir -p "$cache"
work="$(mktemp -d /var/tmp/wireguard-ts-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
say() { echo "image: $*" >&2; }

# The runtime's part of the Debian tree (scripts/image-rootfs.sh), as a tar with the same bytes
# for the same files, so that buildah reuses its layer.
runtime_rootfs() {
  rm -rf "$work/full" "$work/min" && mkdir -p "$work/full" "$work/min"
  tar -xf "$1" -C "$work/full"
  bash "$root/scripts/image-rootfs.sh" "$work/full" "$work/min" "$node_pkg/bin/node" "$arch"
  say "runtime root file system: $(du -sh "$work/min" | cut -f1) of Debian's $(du -sh "$work/full" | cut -f1)"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/min" -cf "$2" .
  rm -rf "$work/full" "$work/min"
}

build_image() {
  # 1. The Debian root file system, cached under a key of everything that shapes it.
  sources=/etc/apt/sources.list.d/debian.sources
  [ -r "$sources" ] || sources=http://deb.debian.org/debian
  mm_opts=(
    --variant=essential --arch="$arch" --include="$(IFS=,; echo "${packages[*]}")"
    # Merged /usr set up by the hook, so apt does not pull usrmerge and with it all of perl.
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    # No package manager state or caches in the image: it is never upgraded in place.
    --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/lib/apt/lists/* "$1"/var/log/*'
    --customize-hook='mkdir -p "$1"/var/lib/wireguard-ts'
    --format=tar
  )
  key="$( (echo "$suite"; printf '%s\n' "${mm_opts[@]}"; [ -r "$sources" ] && cat "$sources") |
    sha256sum | cut -c1-16)"
  rootfs="$cache/rootfs-$suite-$key.tar"
  if [ "$refresh" = 1 ] || ! [ -s "$rootfs" ]; then
    say "building the Debian $suite $arch root file system (mmdebstrap)"
    mmdebstrap -q "${mm_opts[@]}" "$suite" "$rootfs.tmp" "$sources"
    mv "$rootfs.tmp" "$rootfs"
    # Root file systems of earlier option sets are never used again.
    find "$cache" -maxdepth 1 -name 'rootfs-*.tar' ! -name "${rootfs##*/}" -delete
  fi

  # 2. Node.js from the npm registry (a binary inside a registry package), with its headers.
  node_pkg="$cache/node-linux-$node_arch-$node_version"
  if ! [ -x "$node_pkg/bin/node" ]; then
    say "fetching node-linux-$node_arch@$node_version from the npm registry"
    (cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" >/dev/null)
    mkdir -p "$node_pkg.tmp"
    tar -xzf "$work/node-linux-$node_arch-$node_version.tgz" -C "$node_pkg.tmp" --strip-components=1 \
      package/bin/node package/include package/LICENSE
    rm -rf "$node_pkg" && mv "$node_pkg.tmp" "$node_pkg"
  fi
  # The arm64 binary runs here under qemu-user through binfmt_misc.
  got="$("${target[@]}" "$node_pkg/bin/node" -p 'process.version + " " + process.versions.modules')"
  say "image node: $got ($node_arch)"
  [ "${got%% *}" = "v$node_version" ] || { say "node reports $got, expected v$node_version"; exit 1; }

  # 3. The project: production dependencies, compiled TypeScript (src only), the addon.
  ctx="$work/context"
  app="$ctx/app"
  mkdir -p "$app/bin" "$ctx/deps"
  runtime_rootfs "$rootfs" "$ctx/rootfs.tar"
  mkdir -p "$ctx/local/bin" "$ctx/local/share/doc/node"
  cp "$node_pkg/bin/node" "$ctx/local/bin/node"
  ln -s /app/bin/wireguard-ts "$ctx/local/bin/wireguard-ts"
  # The static symbol table and debug info (12 MB); the dynamic symbols the addon looks up stay.
  "${cross_cc:+${cross_cc%gcc}}strip" --strip-all "$ctx/local/bin/node"
  cp "$node_pkg/LICENSE" "$ctx/local/share/doc/node/LICENSE"
  cp "$root/package.json" "$root/package-lock.json" "$ctx/deps/"
  # All dependencies are plain JavaScript, the same for every architecture.
  (cd "$ctx/deps" && npm ci --silent --omit=dev --ignore-scripts --no-audit --no-fund)
  rm -f "$ctx/deps/package-lock.json" "$ctx/deps/node_modules/.package-lock.json"
  # Type declarations, TypeScript sources, source maps and docs are never loaded: 88 -> 45 MB;
  # the pruning below and scripts/image-minify.mjs take it to 15 MB.
  find "$ctx/deps/node_modules" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' \
    -o -name '*.map' -o -name '*.md' \) -delete
  # What the runtime never loads: the benchmark library (bench/ is not in the image) and lodash
  # under it, the Bare runtime's fs/path that tar-fs maps to node's own under Node, test data.
  (cd "$ctx/deps/node_modules" && rm -rf benchmark lodash platform bare-* bintrees/test)
  cp "$root/package.json" "$app/"
  cp "$root/bin/wireguard-ts" "$app/bin/"

  if ! [ -x "$root/node_modules/.bin/tsc" ] || ! [ -d "$root/node_modules/esbuild" ]; then
    say "installing the build tools (npm ci --ignore-scripts)"
    (cd "$root" && npm ci --silent --ignore-scripts --no-audit --no-fund)
  fi
  node "$root/scripts/image-minify.mjs" "$ctx/deps/node_modules"
  # Only src/ (the tests and the benchmark stay out), no declarations or maps.
  node -e 'const [root, out] = process.argv.slice(1);
    console.log(JSON.stringify({ extends: `${root}/tsconfig.json`, include: [`${root}/src`],
      compilerOptions: { outDir: out, declaration: false, sourceMap: false,
        typeRoots: [`${root}/node_modules/@types`] } }));' "$root" "$app/dist" >"$work/tsconfig.json"
  "$root/node_modules/.bin/tsc" -p "$work/tsconfig.json"
  # The lab (namespaces, traffic generators) serves the tests and the benchmark only.
  rm -rf "$app/dist/src/lab"
  if grep -rlE "from '(\.\./)+lab/|from '\./lab/" "$app/dist/src" >/dev/null; then
    say "the runtime imports src/lab: $(grep -rlE "from '(\.\./)+lab/|from '\./lab/" "$app/dist/src")"
    exit 1
  fi

  gyp_js="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
  [ -r "$gyp_js" ] || gyp_js="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  mkdir -p "$work/addon/src/tun"
  cp "$root/binding.gyp" "$work/addon/"
  cp -r "$root/src/tun/native" "$work/addon/src/tun/"
  say "compiling the addon against node $node_version's headers ($arch)"
  (
    cd "$work/addon"
    if [ -n "$cross_cc" ]; then
      export CC="$cross_cc" CXX="${cross_cc%gcc}g++" LINK="${cross_cc%gcc}g++" AR="${cross_cc%gcc}ar"
    fi
    node "$gyp_js" rebuild --silent --nodedir="$node_pkg" --arch="$node_arch" >/dev/null
  )
  mkdir -p "$app/build/Release"
  cp "$work/addon/build/Release/wgts_native.node" "$app/build/Release/"
  # The addon loads in the image's own node (under qemu for arm64) before it goes in.
  "${target[@]}" "$node_pkg/bin/node" -e "require(process.argv[1])" \
    "$app/build/Release/wgts_native.node"

  # 4. The image: layers from the least to the most often changed (see image.Containerfile).
  say "building $tag (buildah)"
  old_id="$(buildah images --quiet --no-trunc "$tag" 2>/dev/null | head -1 || true)"
  buildah build --quiet --layers --platform "linux/$arch" --isolation chroot \
    --build-arg "VERSION=$version" --build-arg "NODE_VERSION=$node_version" \
    --label "io.wireguard-ts.inputs=$inputs" \
    -f "$root/scripts/image.Containerfile" -t "$tag" "$ctx" >/dev/null
  # The image's own node runs the CLI (under qemu-user for arm64) before the image is reported.
  ctr="$(buildah from --quiet "$tag")"
  ran="$(buildah run --isolation chroot "$ctr" -- wireguard-ts --version 2>&1 | head -1)" || true
  buildah rm "$ctr" >/dev/null
  [ "$ran" = "wireguard-ts v$version" ] || { say "the image does not run: $ran"; exit 1; }
  size="$(buildah images --format '{{.Size}}' "$tag" | head -1)"
  say "built $tag: $size"
  # The image this one replaces, unless something else still uses it.
  if [ -n "$old_id" ] && [ "$old_id" != "$(buildah images --quiet --no-trunc "$tag" | head -1)" ]; then
    buildah rmi "$old_id" >/dev/null 2>&1 || true
  fi
}
[ "$build" = 0 ] || build_image
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$tag" "oci-archive:$archive:$tag" >/dev/null
  say "wrote $archive ($(du -h "$archive" | cut -f1))"
fi
echo "$tag"
