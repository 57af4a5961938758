#!/usr/bin/env bash
# Builds the test cluster's container images locally, as OCI layout tars in $K8S_IMAGES (no registry,
# no pull, no image tool: infra/k8s/mkimage.py), and prints on stdout (only):
#   IMAGE_PAUSE=localhost/ms2m-pause:<tag>   the pod sandbox (our static Go pause, images/pause)
#   IMAGE_MS2M=localhost/ms2m:<tag>          node + the project: orchestrator worker, node agents and
#                                            example services all run from it with different commands
# <tag> is a short hash of the image's inputs, so a changed build gets a new tag and an unchanged one
# is skipped (~1 s to hash the inputs). The refs and tar paths are also written to $IMAGES_ENV, which
# up.sh imports from.
#
# Usage: images.sh [REPO_ROOT]   (default: this script's ../..). The repo's dist/ must be compiled
# already (npx tsc -p tsconfig.json): that is the caller's job, this script only packs it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/env.sh
. "$HERE/env.sh"

REPO=$(cd "${1:-$HERE/../..}" && pwd)
[ -d "$REPO/dist" ] || die "$REPO/dist is missing: the ms2m image packs the compiled project" \
  "run: (cd $REPO && npx tsc -p tsconfig.json), then this again"
[ -f "$REPO/package-lock.json" ] || die "$REPO/package-lock.json is missing (npm ci needs it)"
[ -x "$K8S_BIN/ctr" ] || die "$K8S_BIN/ctr is missing: build the cluster first (infra/k8s/cluster.sh build)"
command -v go >/dev/null || die "Go is needed to build the pause image"
command -v npm >/dev/null || die "npm is needed for the image's production node_modules"

# Bump a recipe number when the way an image is assembled changes without its inputs changing.
PAUSE_RECIPE=1
MS2M_RECIPE=2
MKIMAGE=$HERE/mkimage.py
WORK=$K8S_IMAGES/work
mkdir -p "$K8S_IMAGES"
with_lock k8s-images

sha() { sha256sum "$@" | awk '{print $1}'; }
tag_of() { sha256sum | cut -c1-12; }
ms() { printf '%d' $(( ($(date +%s%N) - $1) / 1000000 )); }

# keep_latest PREFIX: delete all but the two newest PREFIX-*.tar (the previous one stays, for a
# checkpoint whose base image is the older build).
keep_latest() {
  find "$K8S_IMAGES" -maxdepth 1 -name "$1-*.tar" -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- |
    while read -r old; do rm -f "$old"; done
}

# --- pause ------------------------------------------------------------------------------------------
PAUSE_SRC=$HERE/images/pause
PAUSE_TAG=$({ echo "recipe $PAUSE_RECIPE"; go version; sha "$PAUSE_SRC/main.go" "$PAUSE_SRC/go.mod" "$MKIMAGE"; } | tag_of)
IMAGE_PAUSE=localhost/ms2m-pause:$PAUSE_TAG
PAUSE_TAR=$K8S_IMAGES/pause-$PAUSE_TAG.tar
if [ -f "$PAUSE_TAR" ]; then
  log "image $IMAGE_PAUSE: up to date"
else
  t=$(date +%s%N)
  r=$WORK/pause-rootfs
  rm -rf "$r" && mkdir -p "$r"
  (cd "$PAUSE_SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$r/pause" .)
  python3 "$MKIMAGE" --name "$IMAGE_PAUSE" --rootfs "$r" --entrypoint '["/pause"]' --out "$PAUSE_TAR" >/dev/null
  rm -rf "$r"
  keep_latest pause
  log "image $IMAGE_PAUSE: built in $(ms "$t") ms"
fi

# --- production node_modules, one staging dir per package-lock.json -----------------------------------
# npm ci --omit=dev is the slow part (~30 s with a warm npm cache), and its result depends on the lock
# file only, so it is cached across image builds and checkouts.
LOCK_HASH=$(sha "$REPO/package-lock.json" | cut -c1-16)
NM_ROOT=$MS2M_K8S/node-modules
NM=$NM_ROOT/$LOCK_HASH
if [ ! -f "$NM/.complete" ]; then
  t=$(date +%s%N)
  log "npm ci --omit=dev for the image (package-lock $LOCK_HASH)"
  rm -rf "$NM" "$NM.tmp" && mkdir -p "$NM.tmp"
  cp "$REPO/package.json" "$REPO/package-lock.json" "$NM.tmp/"
  if ! out=$(cd "$NM.tmp" && nice -n 10 npm ci --omit=dev --no-audit --no-fund --loglevel=error 2>&1 {MS2M_LOCK_FD}>&-); then
    printf '%s\n' "$out" | tail -n 20 | log_block
    rm -rf "$NM.tmp"
    die "npm ci --omit=dev failed (above)"
  fi
  touch "$NM.tmp/.complete"
  mv "$NM.tmp" "$NM"
  log "  production node_modules ready in $(ms "$t") ms"
  # Keep the three most recent lock files' trees (worktrees on different branches alternate).
  find "$NM_ROOT" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2- |
    while read -r old; do rm -rf "$old"; done
fi

# --- ms2m ---------------------------------------------------------------------------------------------
# The shared libraries the image needs: exactly what ldd reports for node and for the native addons
# that npm installed (Temporal's core bridge, resvg), plus the dynamic loader. Prebuilt addons for other
# platforms are in the tree too; ldd rejects them and they add nothing.
libs_for() {
  local out
  out=$(ldd "$@" 2>/dev/null || true)
  if grep -q 'not found' <<<"$out"; then
    grep -B100 'not found' <<<"$out" | log_block
    die "ldd cannot resolve a library the image needs (above)"
  fi
  grep -oE '(=> )?/[^ ]+' <<<"$out" | sed 's/^=> //' | grep -v ':$' || true
}
mapfile -t NATIVE < <(find "$NM/node_modules" -name '*.node' -type f 2>/dev/null | sort)
mapfile -t LIBS < <({ libs_for /usr/bin/node; [ ${#NATIVE[@]} -eq 0 ] || libs_for "${NATIVE[@]}"; echo /lib64/ld-linux-x86-64.so.2; } | sort -u)
for f in "${LIBS[@]}"; do [ -e "$f" ] || die "ldd named $f, which does not exist"; done

# dist/ as the image gets it: everything but tsc's incremental state.
dist_files() { (cd "$REPO" && find dist -type f ! -name .tsbuildinfo -print0 | sort -z); }
# A cheap staleness hint (compiling is the caller's job): a source newer than tsc's last run.
if [ -f "$REPO/dist/.tsbuildinfo" ]; then
  newer=$(cd "$REPO" && find . \( -path ./node_modules -o -path ./dist -o -path ./test -o -path ./.git \) -prune -o \
    -name '*.ts' -newer dist/.tsbuildinfo -print -quit)
  [ -z "$newer" ] || log "warning: $newer is newer than dist/; the image packs dist/ as it is (run npx tsc -p tsconfig.json)"
fi

t=$(date +%s%N)
MS2M_TAG=$({
  echo "recipe $MS2M_RECIPE"
  sha /usr/bin/node "$K8S_BIN/ctr" "$MKIMAGE" "$REPO/package.json" "$REPO/package-lock.json"
  for f in "${LIBS[@]}"; do echo "$f $(sha "$f")"; done
  dist_files | (cd "$REPO" && xargs -0 -r sha256sum)
} | tag_of)
IMAGE_MS2M=localhost/ms2m:$MS2M_TAG
MS2M_TAR=$K8S_IMAGES/ms2m-$MS2M_TAG.tar
if [ -f "$MS2M_TAR" ]; then
  log "image $IMAGE_MS2M: up to date (inputs hashed in $(ms "$t") ms)"
else
  r=$WORK/ms2m-rootfs
  rm -rf "$r" && mkdir -p "$r/usr/bin" "$r/usr/local/bin" "$r/etc" "$r/tmp" "$r/app"
  chmod 1777 "$r/tmp"
  cp /usr/bin/node "$r/usr/bin/node"
  for f in "${LIBS[@]}"; do mkdir -p "$r$(dirname "$f")" && cp -L "$f" "$r$f"; done
  cp "$K8S_BIN/ctr" "$r/usr/local/bin/ctr"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  cp -a "$REPO/dist" "$r/app/dist" && rm -f "$r/app/dist/.tsbuildinfo"
  cp "$REPO/package.json" "$r/app/"
  # Hard links: no copy of ~150 MB of node_modules; mkimage.py reads through them.
  cp -al "$NM/node_modules" "$r/app/node_modules" 2>/dev/null || cp -a "$NM/node_modules" "$r/app/node_modules"
  # Temporal's core bridge ships prebuilt binaries for five platforms (~110 MB we cannot run):
  # keep this host's only.
  rel=$r/app/node_modules/@temporalio/core-bridge/releases
  if [ -d "$rel/$(uname -m)-unknown-linux-gnu" ]; then
    find "$rel" -mindepth 1 -maxdepth 1 ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} +
  fi
  # UV_USE_IO_URING=0: CRIU cannot dump io_uring, and every process in this image must be checkpointable.
  python3 "$MKIMAGE" --name "$IMAGE_MS2M" --rootfs "$r" --workdir /app \
    --entrypoint '["/usr/bin/node"]' \
    --env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --env UV_USE_IO_URING=0 \
    --out "$MS2M_TAR" >/dev/null
  rm -rf "$r"
  keep_latest ms2m
  log "image $IMAGE_MS2M: built in $(ms "$t") ms ($(du -m "$MS2M_TAR" | cut -f1) MB)"
fi
rmdir "$WORK" 2>/dev/null || true

cat >"$IMAGES_ENV.tmp" <<EOF
IMAGE_PAUSE=$IMAGE_PAUSE
IMAGE_PAUSE_TAR=$PAUSE_TAR
IMAGE_MS2M=$IMAGE_MS2M
IMAGE_MS2M_TAR=$MS2M_TAR
EOF
mv "$IMAGES_ENV.tmp" "$IMAGES_ENV"
echo "IMAGE_PAUSE=$IMAGE_PAUSE"
echo "IMAGE_MS2M=$IMAGE_MS2M"
