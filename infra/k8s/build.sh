#!/usr/bin/env bash
# Builds the test cluster's binaries from the Go module proxy (no release tarballs, no GitHub), once:
# Kubernetes (a wrapper module, because k8s.io/kubernetes replaces its staging modules with local paths
# and so cannot be `go install`ed), etcd (the same trick), containerd + its shim + ctr, runc (cgo, for
# seccomp), and the CNI plugins from Debian's package. Incremental: a component whose binaries carry the
# pinned version is skipped; Go's caches make a rebuild after a deleted binary take seconds.
#
# Cold: ~13–15 min on 2 cores (Kubernetes and the runtime build in parallel). Logs: $MS2M_K8S/build-*.log
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

command -v go >/dev/null || die "Go is needed to build the test cluster (go ≥ 1.24)" "install it (Debian: golang-1.24) or put it in PATH"
command -v gcc >/dev/null || die "gcc is needed to build runc (cgo)" "apt-get install -y gcc"
command -v python3 >/dev/null || die "python3 is needed to build the images" "apt-get install -y python3"
mkdir -p "$K8S_BIN" "$MS2M_K8S/build" "$MS2M_K8S/debs" "$CNI_BIN"
with_lock k8s-build

stamp() { echo "$MS2M_K8S/build/$1.done"; }
done_for() { [ -f "$(stamp "$1")" ] && [ "$(cat "$(stamp "$1")")" = "$2" ]; }

build_k8s() {
  local v=$K8S_VERSION sv=v0.${K8S_VERSION#v1.} w=$MS2M_K8S/build/k8s-$K8S_VERSION
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"
  mkdir -p "$w" && cd "$w"
  local mod gover
  mod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  gover=$(awk '/^go /{print $2; exit}' "$mod")
  {
    echo "module ms2m/k8s"; echo "go $gover"; echo "require k8s.io/kubernetes $v"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$mod" | awk -v sv="$sv" '{print "replace " $1 " => " $1 " " sv}'
  } > go.mod
  { echo '//go:build tools'; echo 'package tools'; echo 'import ('
    for c in $cmds; do echo "  _ \"k8s.io/kubernetes/cmd/$c\""; done; echo ')'; } > tools.go
  go mod tidy
  local maj min ld="-s -w" pkgs=""
  maj=${v#v}; maj=${maj%%.*}; min=${v#v*.}; min=${min%%.*}
  # Without these the binaries call themselves v0.0.0-master, which kubectl and the kubelet refuse to pair.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=$maj -X $p.gitMinor=$min -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in $cmds; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  # One build for all five so their shared packages compile once.
  # shellcheck disable=SC2086
  CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "$ld" -o "$K8S_BIN/" $pkgs
}

build_runtime() {
  export GOBIN=$K8S_BIN
  cd "$MS2M_K8S/debs"
  ls libseccomp-dev_*.deb >/dev/null 2>&1 || apt-get download libseccomp-dev
  ls containernetworking-plugins_*.deb >/dev/null 2>&1 || apt-get download containernetworking-plugins
  # runc's nsenter is C; seccomp needs the headers, unpacked rather than installed.
  local sd=$MS2M_K8S/seccomp-dev
  rm -rf "$sd" && dpkg -x libseccomp-dev_*.deb "$sd"
  ln -sf /usr/lib/x86_64-linux-gnu/libseccomp.so.2 "$sd/usr/lib/x86_64-linux-gnu/libseccomp.so"
  PKG_CONFIG_PATH=$sd/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=$sd CGO_ENABLED=1 nice -n 19 \
    go install -trimpath -tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"
  CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  local w=$MS2M_K8S/build/etcd-$ETCD_VERSION
  mkdir -p "$w" && cd "$w"
  # The etcd server module replaces its siblings with relative paths: pin them to the same tag instead.
  cat > go.mod <<EOM
module ms2m/etcd
go 1.24
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
EOM
  printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy
  CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w" -o "$K8S_BIN/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$MS2M_K8S/cni-deb" && dpkg -x "$MS2M_K8S"/debs/containernetworking-plugins_*.deb "$MS2M_K8S/cni-deb"
  cp "$MS2M_K8S"/cni-deb/usr/lib/cni/* "$CNI_BIN/"
}

build_registry() {
  # The OCI registry of the registry transfer mode (an agent pushes the checkpoint image, the target's kubelet pulls it).
  GOBIN=$K8S_BIN CGO_ENABLED=0 nice -n 19 go install -trimpath -ldflags "-s -w" "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
}

K8S_ID="k8s $K8S_VERSION"
RT_ID="runc $RUNC_VERSION containerd $CONTAINERD_VERSION etcd $ETCD_VERSION"
pids=()
if done_for k8s "$K8S_ID" && [ -x "$K8S_BIN/kubelet" ]; then log "kubernetes $K8S_VERSION: built"; else
  log "building kubernetes $K8S_VERSION (cold: ~13 min; log: $MS2M_K8S/build-k8s.log)"
  ( build_k8s > "$MS2M_K8S/build-k8s.log" 2>&1 && echo "$K8S_ID" > "$(stamp k8s)" ) & pids+=($!)
fi
if done_for runtime "$RT_ID" && [ -x "$K8S_BIN/containerd" ] && [ -x "$K8S_BIN/runc" ]; then log "runc, containerd, etcd, CNI: built"; else
  log "building runc $RUNC_VERSION, containerd $CONTAINERD_VERSION, etcd $ETCD_VERSION, CNI plugins (cold: ~7 min; log: $MS2M_K8S/build-runtime.log)"
  ( build_runtime > "$MS2M_K8S/build-runtime.log" 2>&1 && echo "$RT_ID" > "$(stamp runtime)" ) & pids+=($!)
fi
REG_ID="registry $REGISTRY_VERSION"
if done_for registry "$REG_ID" && [ -x "$K8S_BIN/registry" ]; then log "registry $REGISTRY_VERSION: built"; else
  log "building the OCI registry $REGISTRY_VERSION (cold: ~5 min; log: $MS2M_K8S/build-registry.log)"
  ( build_registry > "$MS2M_K8S/build-registry.log" 2>&1 && echo "$REG_ID" > "$(stamp registry)" ) & pids+=($!)
fi
start=$SECONDS
while [ ${#pids[@]} -gt 0 ]; do
  alive=()
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
  [ ${#alive[@]} -eq 0 ] && break
  sleep 30
  log "  … still building ($(( (SECONDS - start) / 60 )) min)"
done
for p in "${pids[@]}"; do wait "$p" || true; done
done_for k8s "$K8S_ID" || { tail -20 "$MS2M_K8S/build-k8s.log" | log_block; die "the Kubernetes build failed" "see $MS2M_K8S/build-k8s.log"; }
done_for registry "$REG_ID" || { tail -20 "$MS2M_K8S/build-registry.log" | log_block; die "the registry build failed" "see $MS2M_K8S/build-registry.log"; }
done_for runtime "$RT_ID" || { tail -20 "$MS2M_K8S/build-runtime.log" | log_block; die "the runtime build (runc, containerd, etcd, CNI) failed" "see $MS2M_K8S/build-runtime.log"; }
echo "$K8S_BIN"
