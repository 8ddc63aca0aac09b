#!/usr/bin/env bash
# Build the kubelet of the real test node from source, once, into a cache outside the work tree.
#
# Why a script of its own: the control plane (build-binaries.sh) is needed by every cluster test,
# the kubelet only by the real-node tests (tests/e2e/test_real_node.py). It comes from the same
# k8s.io/kubernetes module that tests/cluster/gomod/go.mod pins, so the node and the control
# plane are the same version and share the Go build cache.
#
# With it, pause/pause.go: the node's sandbox image has to be built here too (no registry).
#
# Output: ${VIDEOPIPE_CACHE:-$HOME/.cache/videopipe}/kubelet-<version>/{kubelet,pause} plus a
# stamp; with the stamp matching go.mod/go.sum, pause.go and the Go version, this exits at once.
# Prints the folder on its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/gomod"

version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$build/go.mod")"
[ -n "$version" ] || { echo "no k8s.io/kubernetes version in $build/go.mod" >&2; exit 1; }
minor="${version#v1.}"
minor="${minor%%.*}"

cache="${VIDEOPIPE_CACHE:-$HOME/.cache/videopipe}"
out="$cache/kubelet-$version"
stamp="$out/.stamp"
key="$version $(cat "$build/go.mod" "$build/go.sum" "$here/pause/pause.go" | sha256sum | cut -c1-16)"
key+=" $(go env GOVERSION)"

complete() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$out/kubelet" ] && [ -x "$out/pause" ]
}

if complete; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache"
# One build at a time (two test sessions may start together); the second finds the cache filled.
exec 9> "$cache/.kubelet-$version.lock"
flock 9
if complete; then
    echo "$out"
    exit 0
fi

echo "building kubelet $version and pause into $out (about a minute with a warm Go cache)" >&2
tmp="$(mktemp -d "$cache/.kubelet-$version.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# The version the node reports (the control plane compares it; v0.0.0-master would be skew).
pkgv=k8s.io/component-base/version
x=" -X $pkgv.gitVersion=$version -X $pkgv.gitMajor=1 -X $pkgv.gitMinor=$minor"
x+=" -X $pkgv.gitTreeState=clean -X $pkgv.buildDate=1970-01-01T00:00:00Z"

started=$(date +%s)
(
    cd "$build"
    # -mod=mod: resolve through the module proxy; the kubelet's extra packages add a few go.sum
    # lines, which are committed. CGO off: a static binary, no C toolchain needed.
    GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$x" \
        -o "$tmp/kubelet" k8s.io/kubernetes/cmd/kubelet
)
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$tmp/pause" "$here/pause/pause.go"
for b in kubelet pause; do [ -x "$tmp/$b" ] || { echo "missing $b after build" >&2; exit 1; }; done

mkdir -p "$out"
for b in kubelet pause; do mv -f "$tmp/$b" "$out/$b"; done
echo "$key" > "$stamp"
echo "built in $(( $(date +%s) - started )) s" >&2
echo "$out"
