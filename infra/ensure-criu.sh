#!/usr/bin/env bash
# Prints on stdout (only) the absolute path of a criu >= 4.2 whose `criu check`
# passes.
#
# Why not just `apt-get install criu`: Debian 12's criu 3.17 fails `criu check`
# on current kernels and trixie's 4.1.1 cannot dump TCP sockets on kernels >=
# 6.16. 4.2.x from unstable works but needs a newer glibc than Debian 12 ships,
# so installing it system-wide would drag the host onto unstable. Instead we
# fetch the .debs through a private apt configuration (the system's apt state
# is never touched), unpack them into the cache and run criu through the
# unpacked dynamic loader.
#
# Env: MS2M_CRIU (preferred binary), MS2M_CACHE, MS2M_DEBIAN_MIRROR (archive
# URI override for the private apt config).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

MIN_VERSION=4.2

# The set known to be enough (BRIEF §7). criu and its tightly coupled libs
# come from unstable; everything else from trixie, whose glibc is new enough.
UNSTABLE_PKGS=(criu libcompel1 libnet9 libnl-3-200)
TRIXIE_PKGS=(libc6 libbsd0 libffi8 libgmp10 libgnutls30t64 libhogweed6t64
  libidn2-0 libjansson4 libmd0 libmnl0 libnettle8t64 libnftables1 libnftnl11
  libp11-kit0 libprotobuf-c1 libtasn1-6 libunistring5 libuuid1 libxtables12)

BASE=$MS2M_CACHE/criu
ROOT=$BASE/root
DEBS=$BASE/debs
APTDIR=$BASE/apt
WRAPPER=$MS2M_CACHE/bin/criu
STAMP=$BASE/.complete   # written last: its absence means "redo the unpack"

# criu_ok BIN: version >= MIN and `criu check` passes. The version test comes
# first because it is cheap and rules out the common Debian 12 criu 3.17.
criu_ok() {
  local bin=$1 ver out
  ver=$("$bin" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n1) || true
  if [ -z "$ver" ]; then
    log "$bin does not run (criu --version failed)"
    return 1
  fi
  if ! version_ge "$ver" "$MIN_VERSION"; then
    log "$bin is criu $ver, need >= $MIN_VERSION"
    return 1
  fi
  if ! out=$("$bin" check 2>&1); then
    log "$bin (criu $ver): 'criu check' failed:"
    printf '%s\n' "$out" | log_block
    return 1
  fi
  return 0
}

[ "$(id -u)" = 0 ] || die "criu needs root (dump/restore and 'criu check' use privileged kernel APIs); re-run as root."

# 1. An explicitly chosen or system criu wins if it is good enough.
if [ -n "${MS2M_CRIU:-}" ]; then
  if criu_ok "$MS2M_CRIU"; then
    readlink -f "$(command -v "$MS2M_CRIU")"
    exit 0
  fi
  log "MS2M_CRIU=$MS2M_CRIU is not usable; falling back to the private criu $MIN_VERSION build"
fi
if sys=$(command -v criu 2>/dev/null) && [ "$(readlink -f "$sys")" != "$(readlink -f "$WRAPPER" 2>/dev/null)" ]; then
  if criu_ok "$sys"; then
    readlink -f "$sys"
    exit 0
  fi
fi

# 2. Warm path: a previously completed private install.
if [ -f "$STAMP" ] && [ -x "$WRAPPER" ] && criu_ok "$WRAPPER"; then
  echo "$WRAPPER"
  exit 0
fi

# 3. Cold path.
with_lock criu
if [ -f "$STAMP" ] && [ -x "$WRAPPER" ] && criu_ok "$WRAPPER"; then  # another run just did it
  echo "$WRAPPER"
  exit 0
fi
rm -f "$STAMP"

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  die "no usable criu >= $MIN_VERSION and this host has no apt/dpkg to fetch one." \
      "Install criu >= $MIN_VERSION (https://criu.org) and set MS2M_CRIU=/path/to/criu."
fi

case "$(dpkg --print-architecture)" in
  amd64) TRIPLET=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 ;;
  arm64) TRIPLET=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 ;;
  *) die "unsupported architecture $(dpkg --print-architecture); install criu >= $MIN_VERSION yourself and set MS2M_CRIU." ;;
esac

# Reuse the system's archive URI and keyring so mirrors/proxies configured for
# this host keep working. deb822 first (Debian 12 default), then one-line style.
detect_archive() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [ -r "$f" ]; then
    # First stanza whose URI is the main archive (not -security).
    awk '
      /^[[:space:]]*$/ { if (uri != "" && uri !~ /security/) { print uri " " key; found=1; exit } uri=""; key=""; next }
      /^URIs:/ { uri=$2 }
      /^Signed-By:/ { key=$2 }
      END { if (!found && uri != "" && uri !~ /security/) print uri " " key }
    ' "$f"
  elif [ -r /etc/apt/sources.list ]; then
    awk '$1=="deb" && $0 !~ /security/ {
           key=""; if (match($0, /signed-by=[^] ]+/)) key=substr($0, RSTART+10, RLENGTH-10)
           for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i " " key; exit } }' /etc/apt/sources.list
  fi
}
read -r ARCHIVE_URI KEYRING < <(detect_archive || true) || true
ARCHIVE_URI=${MS2M_DEBIAN_MIRROR:-${ARCHIVE_URI:-http://deb.debian.org/debian}}
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
[ -r "$KEYRING" ] || die "Debian archive keyring $KEYRING not found; apt-get install debian-archive-keyring (or set MS2M_CRIU to a criu >= $MIN_VERSION)."

mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache" "$DEBS" "$MS2M_CACHE/bin"
# The file name must end in .sources for apt to parse deb822 syntax.
SOURCES=$(printf 'Types: deb\nURIs: %s\nSuites: trixie unstable\nComponents: main\nSigned-By: %s\n' "$ARCHIVE_URI" "$KEYRING")
sources_changed=0
if [ "$(cat "$APTDIR/ms2m.sources" 2>/dev/null)" != "$SOURCES" ]; then
  printf '%s\n' "$SOURCES" >"$APTDIR/ms2m.sources"
  sources_changed=1
fi
# Dir::Cache keeps our pkgcache.bin away from the system's; the IndexTargets /
# Languages options skip AppStream and translation indexes (~10 MB) we never read.
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APTDIR/ms2m.sources"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::Cache=$APTDIR/cache"
  -o "Acquire::Languages=none"
  -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
  -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
  -o "APT::Sandbox::User=root"
)

refresh_indexes() {
  log "fetching trixie+unstable package indexes from $ARCHIVE_URI (private apt config in $APTDIR)"
  if ! out=$(apt-get "${APT_OPTS[@]}" -q update 2>&1); then
    printf '%s\n' "$out" | log_block
    die "private 'apt-get update' failed (see above). The Debian archive must be reachable;" \
        "set MS2M_DEBIAN_MIRROR=<archive URI> or MS2M_CRIU=<criu >= $MIN_VERSION>."
  fi
}

# select_versions: fill SPECS (pkg=version) with the newest version of each
# package in its suite; one apt-cache call, since each re-parses ~20 MB of
# indexes (~1.5 s). Returns 1 with MISSING set if something is not found.
select_versions() {
  local pkg ver src suite p
  declare -gA VERSION=()
  SPECS=() MISSING=()
  while IFS='|' read -r pkg ver src; do
    pkg=${pkg// /} ver=${ver// /}
    for suite in trixie unstable; do
      [[ $src == *" $suite/"* && -z ${VERSION[$pkg/$suite]:-} ]] && VERSION[$pkg/$suite]=$ver
    done
  done < <(apt-cache "${APT_OPTS[@]}" madison "${UNSTABLE_PKGS[@]}" "${TRIXIE_PKGS[@]}" 2>/dev/null)
  for p in "${UNSTABLE_PKGS[@]}"; do
    [ -n "${VERSION[$p/unstable]:-}" ] && SPECS+=("$p=${VERSION[$p/unstable]}") || MISSING+=("$p (unstable)")
  done
  for p in "${TRIXIE_PKGS[@]}"; do
    [ -n "${VERSION[$p/trixie]:-}" ] && SPECS+=("$p=${VERSION[$p/trixie]}") || MISSING+=("$p (trixie)")
  done
  [ ${#MISSING[@]} -eq 0 ]
}

# deb_glob PKG=VERSION: where apt-get download puts it (':' escaped as %3a).
deb_glob() { local p=${1%%=*} v=${1#*=}; echo "$DEBS/${p}_${v//:/%3a}_*.deb"; }

# download_missing: fetch only the .debs not already cached.
download_missing() {
  local s need=()
  for s in "${SPECS[@]}"; do
    compgen -G "$(deb_glob "$s")" >/dev/null || need+=("$s")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  log "downloading ${#need[@]} .deb(s) into $DEBS"
  if ! DL_OUT=$(cd "$DEBS" && apt-get "${APT_OPTS[@]}" -q download "${need[@]}" 2>&1); then
    return 1
  fi
}

# Indexes younger than a day are good enough to pick versions from, which
# keeps a redo of an interrupted unpack from re-fetching ~20 MB. If they turn
# out stale (a version vanished from unstable), refresh once and retry.
fetched=0
if [ $sources_changed = 0 ] && [ "$(find "$APTDIR/lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 | wc -l)" -ge 2 ]; then
  log "reusing package indexes in $APTDIR/lists (< 1 day old)"
  if select_versions && download_missing; then
    fetched=1
  else
    log "cached indexes look stale; refreshing"
    refresh_indexes
  fi
else
  refresh_indexes
fi
if [ $fetched = 0 ]; then
  select_versions ||
    die "not in the archive: ${MISSING[*]}. A package was probably renamed (e.g. a t64 transition);" \
        "find the new name with: apt-cache ${APT_OPTS[*]} search <name>  and update infra/ensure-criu.sh."
  download_missing || { printf '%s\n' "$DL_OUT" | log_block; die "apt-get download failed (see above)."; }
fi
criu_ver=${VERSION[criu/unstable]}
version_ge "$criu_ver" "$MIN_VERSION" ||
  die "Debian unstable only has criu $criu_ver (< $MIN_VERSION); install a newer criu and set MS2M_CRIU."
log "using criu $criu_ver from unstable"

# Unpack into a fresh tree and swap it in, so an interrupted run never leaves
# a half-populated root that looks usable.
log "unpacking into $ROOT"
rm -rf "$ROOT.tmp"
mkdir -p "$ROOT.tmp"
for s in "${SPECS[@]}"; do
  p=${s%%=*} v=${s#*=}
  for deb in "$DEBS/${p}_${v//:/%3a}_"*.deb; do   # deb_glob, kept quoting-safe
    dpkg -x "$deb" "$ROOT.tmp"
  done
done
rm -rf "$ROOT"
mv "$ROOT.tmp" "$ROOT"

# Older .debs still ship some libs under /lib; search both. The root path is
# baked in (not derived from $0) so the wrapper works through any symlink.
cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Generated by infra/ensure-criu.sh: criu $criu_ver from Debian unstable, run
# through its own glibc so the host's libc stays untouched.
R='$ROOT'
exec "\$R/usr/lib/$TRIPLET/$LOADER" --library-path "\$R/usr/lib/$TRIPLET:\$R/lib/$TRIPLET" "\$R/usr/sbin/criu" "\$@"
EOF
chmod +x "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"

criu_ok "$WRAPPER" ||
  die "the unpacked criu $criu_ver does not pass 'criu check' (output above)." \
      "If a shared library is missing, add its package to TRIXIE_PKGS in infra/ensure-criu.sh;" \
      "if a kernel feature is missing, this kernel cannot run ms2m migrations."
printf '%s\n' "${SPECS[@]}" >"$STAMP"
log "criu $criu_ver ready: $WRAPPER"
echo "$WRAPPER"
