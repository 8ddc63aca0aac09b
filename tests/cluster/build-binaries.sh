#!/usr/bin/env bash
# Build the test cluster's control plane from source, once, into a cache outside the work tree.
#
# Why from source: these machines have Go and the Go module proxy but no container engine and no
# download site for release binaries. kube-apiserver, kube-controller-manager and kube-scheduler
# come from the k8s.io/kubernetes module, etcd from go.etcd.io/etcd/server/v3, at the versions that
# tests/cluster/gomod/go.mod (and its go.sum) pin. All four are built by ONE `go build` so that the
# packages they share (client-go, apimachinery, grpc, ...) compile once.
#
# Output: ${VIDEOPIPE_CACHE:-$HOME/.cache/videopipe}/k8s-<version>/{etcd,kube-apiserver,...}
# plus a stamp; with the stamp matching go.mod/go.sum and the Go version, this exits at once.
# Prints the binary folder on its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/gomod"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler)

version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$build/go.mod")"
[ -n "$version" ] || { echo "no k8s.io/kubernetes version in $build/go.mod" >&2; exit 1; }
minor="${version#v1.}"
minor="${minor%%.*}"

cache="${VIDEOPIPE_CACHE:-$HOME/.cache/videopipe}"
out="$cache/k8s-$version"
stamp="$out/.stamp"
key="$version $(cat "$build/go.mod" "$build/go.sum" | sha256sum | cut -c1-16) $(go env GOVERSION)"

complete() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || return 1
    for b in "${binaries[@]}"; do [ -x "$out/$b" ] || return 1; done
}

if complete; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache"
# One build at a time (two test sessions may start together); the second finds the cache filled.
exec 9> "$cache/.k8s-$version.lock"
flock 9
if complete; then
    echo "$out"
    exit 0
fi

echo "building Kubernetes $version control plane and etcd into $out (first time: several minutes)" >&2
tmp="$(mktemp -d "$cache/.k8s-$version.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# What `kubectl version` and /version report; the apiserver would otherwise say v0.0.0-master,
# which breaks clients (helm, kubectl skew checks) that compare versions.
pkgv=k8s.io/component-base/version
cgv=k8s.io/client-go/pkg/version
x=""
for p in $pkgv $cgv; do
    x+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    x+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

started=$(date +%s)
(
    cd "$build"
    # -mod=mod: resolve from go.mod/go.sum through the module proxy (there is no vendor folder).
    # CGO off: static binaries, no C toolchain needed. GOMAXPROCS is left to Go (all cores).
    GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$x" \
        -o "$tmp/" \
        go.etcd.io/etcd/server/v3 \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler
)
# A main package at .../server/v3 is named after the element before the major version suffix.
mv "$tmp/server" "$tmp/etcd"
for b in "${binaries[@]}"; do [ -x "$tmp/$b" ] || { echo "missing $b after build" >&2; exit 1; }; done

mkdir -p "$out"
for b in "${binaries[@]}"; do mv -f "$tmp/$b" "$out/$b"; done
echo "$key" > "$stamp"
echo "built in $(( $(date +%s) - started )) s" >&2
echo "$out"
