#!/usr/bin/env bash
# Build the operator and worker images with podman, cached under ~/.cache/videopipe/images.
#
#   images/build.sh                    operator and CPU-only worker, tagged :test and saved as
#                                      docker-archive tarballs (what tests and the test node load)
#   images/build.sh --gpu              the CUDA worker, tagged :test-gpu (not saved: no GPU here)
#   images/build.sh --gpu-if-changed   the CUDA worker only when Dockerfile.worker differs from
#                                      the one it was last built from (what CI runs)
#   images/build.sh --check            build nothing; exit 1 when the operator or CPU worker
#                                      image is missing or older than its inputs (tests/images)
#
# Each image is rebuilt only when its inputs change: the Dockerfile, the files it COPYs, the
# base image and the build arguments, hashed into a stamp next to the tarball. Where no registry
# can be reached (python:3.11-slim-bookworm cannot be pulled), the base is made from Debian
# packages with mmdebstrap. BASE_IMAGE=... chooses a base of your own.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${VIDEOPIPE_IMAGE_CACHE:-$HOME/.cache/videopipe/images}
REPO=ghcr.io/videopipe
TAG="test"
UPSTREAM_BASE=docker.io/library/python:3.11-slim-bookworm
LOCAL_BASE=localhost/videopipe-base:bookworm
PACKAGES=(podman buildah mmdebstrap runc fuse-overlayfs uidmap slirp4netns
  containernetworking-plugins)
# Debian's pip trusts this bundle: mounted into the build, pip works through a proxy that
# re-signs HTTPS with a CA that only the host knows.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
export CONTAINERS_CONF=$ROOT/images/containers.conf

log() { printf 'images: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  if ! command -v dpkg >/dev/null; then
    command -v podman >/dev/null || { log "podman is not installed"; exit 1; }
    return
  fi
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The base: BASE_IMAGE if set, else python:3.11-slim-bookworm if present or pullable, else one
# made here from Debian packages (Debian's Python 3.11 in /usr/bin; the Dockerfiles need no
# change). Once made, the local base is used until removed (podman rmi $LOCAL_BASE).
choose_base() {
  if [ -n "${BASE_IMAGE:-}" ]; then
    echo "$BASE_IMAGE"
  elif podman image exists "$UPSTREAM_BASE"; then
    echo "$UPSTREAM_BASE"
  elif podman image exists "$LOCAL_BASE"; then
    echo "$LOCAL_BASE"
  elif timeout 120 podman pull -q "$UPSTREAM_BASE" >/dev/null 2>&1; then
    echo "$UPSTREAM_BASE"
  else
    build_local_base
    echo "$LOCAL_BASE"
  fi
}

build_local_base() {
  log "no registry reachable: making $LOCAL_BASE from Debian bookworm packages"
  local tarball=$CACHE/base-bookworm.tar
  # merged-usr hook: without it usrmerge is installed and pulls in perl (248 MB, not 152 MB).
  mmdebstrap --quiet --variant=minbase \
    --include=python3.11,python3-venv,python3-pip,python-is-python3,ca-certificates \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    bookworm "$tarball"
  podman import --quiet --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$tarball" "$LOCAL_BASE" >/dev/null
  rm -f "$tarball"
}

# What an image is built from: its Dockerfile, every file its COPY lines name (less what
# .dockerignore drops), and the extra words given (base image id, build arguments).
input_hash() {
  local dockerfile=$1
  shift
  local sources
  sources=$(awk 'toupper($1) == "COPY" && $2 !~ /^--/ { for (i = 2; i < NF; i++) print $i }' \
    "$ROOT/$dockerfile")
  {
    cat "$ROOT/$dockerfile"
    printf '%s\n' "$@"
    # shellcheck disable=SC2086  # one path a word
    (cd "$ROOT" && find $sources -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
      ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1
}

# build NAME DOCKERFILE IMAGE TARBALL [BUILD-ARG...]: build IMAGE unless its stamp is current;
# save it to TARBALL unless TARBALL is empty.
build() {
  local name=$1 dockerfile=$2 image=$3 tarball=$4
  shift 4
  local stamp=$CACHE/$name.inputs hash
  hash=$(input_hash "$dockerfile" "$base_id" "$@")
  if [ -n "$check_only" ]; then
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ] || ! podman image exists "$image"; then
      log "$image is missing or older than its inputs: run make images"
      stale=1
    fi
    return
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    if podman image exists "$image"; then
      if [ -z "$tarball" ] || [ -f "$tarball" ]; then
        log "$image is up to date"
        return
      fi
    elif [ -n "$tarball" ] && [ -f "$tarball" ]; then
      log "$image: loading $tarball"
      podman load --quiet --input "$tarball" >/dev/null
      return
    fi
  fi
  log "building $image from $dockerfile"
  local args=() arg start=$SECONDS before
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  before=$(podman images --quiet --no-trunc --filter dangling=true | sort)
  [ -f "$CA_BUNDLE" ] && args+=(--volume "$CA_BUNDLE:$CA_BUNDLE:ro")
  # Thousands of lines of apt and pip: kept in a log, shown when the build fails.
  if ! podman build --pull=never --network=host "${ulimits[@]}" \
    --build-arg "BASE_IMAGE=$base" "${args[@]}" \
    --file "$ROOT/$dockerfile" --tag "$image" "$ROOT" >"$CACHE/$name.log" 2>&1; then
    tail -n 60 "$CACHE/$name.log" >&2
    log "building $image failed; the whole log: $CACHE/$name.log"
    exit 1
  fi
  if [ -n "$tarball" ]; then
    rm -f "$tarball"
    podman save --quiet --format docker-archive --output "$tarball.tmp" "$image"
    mv "$tarball.tmp" "$tarball"
  fi
  echo "$hash" >"$stamp"
  log "$image built in $((SECONDS - start)) s"
  # What this build left untagged (its build stage, the image it replaced) is only garbage:
  # a changed input rebuilds from the COPY on anyway. Other images are not ours to remove.
  comm -13 <(echo "$before") <(podman images --quiet --no-trunc --filter dangling=true | sort) |
    xargs --no-run-if-empty podman rmi >/dev/null 2>&1 || true
}

main() {
  local mode=${1:-cpu}
  case $mode in
    cpu | --gpu | --gpu-if-changed | --check) ;;
    *)
      log "usage: $0 [--gpu | --gpu-if-changed | --check]"
      exit 2
      ;;
  esac
  if [ "$mode" = --gpu-if-changed ]; then
    if sha256sum <"$ROOT/Dockerfile.worker" | cmp -s - "$CACHE/worker-gpu.dockerfile"; then
      log "Dockerfile.worker unchanged since the last CUDA build: not building it"
      return
    fi
    mode=--gpu
  fi
  check_only="" stale=""
  if [ "$mode" = --check ]; then
    check_only=1
    base=${BASE_IMAGE:-}
    for base in $base "$UPSTREAM_BASE" "$LOCAL_BASE"; do
      podman image exists "$base" && break
    done
    base_id=$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null) || base_id=none
    build operator Dockerfile.operator "$REPO/videopipe-operator:$TAG" ""
    build worker Dockerfile.worker "$REPO/videopipe-worker:$TAG" "" "CUDA_PACKAGES="
    [ -z "$stale" ]
    return
  fi
  install_packages
  mkdir -p "$CACHE"
  # One build at a time per machine: worktrees and CI share the cache and podman's storage.
  exec 9>"$CACHE/.lock"
  flock 9

  ulimits=()
  local hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt 16384 ]; then
    ulimits=(--ulimit "nofile=$hard:$hard")
  fi
  base=$(choose_base)
  base_id=$(podman image inspect --format '{{.Id}}' "$base")

  case $mode in
    cpu)
      build operator Dockerfile.operator "$REPO/videopipe-operator:$TAG" \
        "$CACHE/videopipe-operator.tar"
      build worker Dockerfile.worker "$REPO/videopipe-worker:$TAG" \
        "$CACHE/videopipe-worker.tar" "CUDA_PACKAGES="
      ;;
    --gpu)
      build worker-gpu Dockerfile.worker "$REPO/videopipe-worker:$TAG-gpu" ""
      sha256sum <"$ROOT/Dockerfile.worker" >"$CACHE/worker-gpu.dockerfile"
      ;;
  esac
}

main "$@"
