#!/usr/bin/env bash
# The test cluster: a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd, built from Kubernetes' own Go modules in tools/kubernetes) and a node
# (the real kubelet with Debian's containerd, runc and CNI plugins), on this machine, for direct
# mode's tests, the benchmarks and anyone trying direct mode by hand. Clients reach it at
# 127.0.0.1; pods reach it as the `kubernetes` Service.
#
#   scripts/test-cluster.sh up      builds what is missing, starts the cluster in the background
#                                   (or finds it running) and prints, as its last line, the path
#                                   of an admin kubeconfig
#   scripts/test-cluster.sh down    stops it and removes what it made
#   scripts/test-cluster.sh build   builds what is missing; prints the Kubernetes binary's path
#                                   (`kubectl` of the same release is next to it)
#   scripts/test-cluster.sh env     prints the running cluster's cluster.env (ports and paths)
#                                   and KUBECTL=, the path of the cluster's own kubectl
#   scripts/test-cluster.sh images [IMAGE...]
#                                   copies images from podman's store to the node's containerd
#                                   (default: every localhost/test-images/*:1 podman has); the node
#                                   pulls from no registry, so a pod's image must be copied first
#
# Needs: Go, root, containerd (apt-get install -y containerd), runc, iptables, podman and
# busybox-static (for the pause image and the test images, scripts/build-test-images.sh).
# Environment: TEST_CLUSTER_DIR (default $CARGO_TARGET_DIR/test-cluster, else target/test-cluster)
# is where the cluster keeps its certificates, kubeconfigs, etcd data, logs and audit log.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
dir=${TEST_CLUSTER_DIR:-$target/test-cluster}
module=$repo/tools/kubernetes

# The release of tools/kubernetes/go.mod, stamped into the binaries as `make` would.
KUBE_VERSION=v1.34.4

say() { echo "test-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

# The commit of the release, stamped as `gitCommit` (what `kubectl version` shows as the
# server's): the Go module cache's .info of k8s.io/kubernetes names it when the proxy recorded
# its origin; else the release itself stands for it (the proxy this project uses records none).
kube_commit() {
  local info
  info="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.info"
  sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p' "$info" 2>/dev/null | grep . || echo "$KUBE_VERSION"
}

# The Kubernetes binary, built when missing. Its path holds a hash of everything that goes into
# it, so a second `up` finds it and builds nothing.
build() {
  command -v go >/dev/null || die "Go is needed to build Kubernetes (https://go.dev/dl/)"
  local hash bin commit
  commit=$(kube_commit)
  hash=$({
    echo "$KUBE_VERSION $commit"
    go version
    cat "$module/go.mod" "$module/go.sum" "$module"/*.go
  } | sha256sum | cut -c1-16)
  bin=$target/tools/kubernetes/$hash/kube
  if [ ! -x "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    (
      # Why a lock: two test processes starting at once build once.
      flock 9
      if [ ! -x "$bin" ]; then
        say "building Kubernetes $KUBE_VERSION (about 10 minutes on 2 cores with a cold Go cache)"
        local version_flags="" pkg
        for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
          version_flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1"
          version_flags+=" -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
          version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$commit"
        done
        local started=$SECONDS
        # Why kubectl too: the test images carry it, so that a Job runs the real kubectl of
        # the cluster's release (go.mod lists it as a tool); it shares the build cache with kube.
        (cd "$module" && GOFLAGS=-mod=readonly nice -n 10 go build -trimpath \
          -ldflags "-s -w$version_flags" -o "$bin.tmp" . &&
          GOFLAGS=-mod=readonly nice -n 10 go build -trimpath \
          -ldflags "-s -w$version_flags" -o "$(dirname "$bin")/kubectl" k8s.io/kubernetes/cmd/kubectl)
        mv "$bin.tmp" "$bin"
        say "built in $((SECONDS - started)) s: $bin"
        # Earlier builds are of no more use (a running cluster keeps its binary open).
        find "$target/tools/kubernetes" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" -exec rm -rf {} +
      fi
    ) 9>"$(dirname "$bin").lock"
  fi
  echo "$bin"
}

# Whether the cluster of $dir runs: its control plane's process is alive and was ready.
running() {
  [ -f "$dir/cluster.pid" ] && kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null && [ -f "$dir/ready" ]
}

# The sandbox image every pod runs first: busybox sleeping until it is stopped, as there is no
# registry to pull registry.k8s.io/pause from.
pause_image() {
  local image=localhost/test-cluster/pause:1
  podman image exists "$image" && return
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/sleep"
  tar -C "$root" -cf "$root.tar" .
  podman import --change 'CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 3600 \& wait; done"]' \
    "$root.tar" "$image" >/dev/null
  rm -rf "$root" "$root.tar"
}

# Copies images from podman's store to the node's containerd.
images() {
  running || die "no cluster runs in $dir (scripts/test-cluster.sh up)"
  local socket
  socket=$(sed -n 's/^CONTAINERD_SOCKET=//p' "$dir/cluster.env")
  [ -n "$socket" ] || die "the cluster runs without a node"
  local wanted=("$@")
  if [ ${#wanted[@]} -eq 0 ]; then
    mapfile -t wanted < <(podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/test-images/.*:1$' | sort -u)
  fi
  local image
  # Why one archive per image: from an archive of several, ctr gives every name the archive's
  # one index, so each name would run whichever image comes first.
  for image in "${wanted[@]}"; do
    podman save --format docker-archive "$image" | ctr -a "$socket" -n k8s.io images import - >/dev/null
  done
}

down() {
  local pid
  for pidfile in "$dir"/node.pid "$dir"/cluster.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # After a crash, the node's pods, network and cgroups are still there.
  if [ -f "$dir/kube-binary" ] && [ -d "$dir/node" ]; then
    local kube
    kube=$(cat "$dir/kube-binary")
    # Why the current build as a fallback: a rebuild removes the earlier binaries, and any
    # build's node-clean removes what any node left.
    [ -x "$kube" ] || kube=$(build)
    "$kube" node-clean --dir "$dir" || true
  fi
  rm -rf "$dir"
}

up() {
  local bin
  bin=$(build)
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}"
  pause_image
  mkdir -p "$(dirname "$dir")"
  exec 8>"$dir.lock"
  # Why a lock: concurrent `up`s share one cluster instead of starting two in one directory.
  flock 8
  if running; then
    cat "$dir/ready"
    return
  fi
  down
  mkdir -p "$dir/logs"
  echo "$bin" >"$dir/kube-binary"
  local started=$SECONDS
  # Why 8>&-: the cluster must not hold the lock of `up`.
  setsid "$bin" cluster --dir "$dir" </dev/null >"$dir/logs/cluster.log" 2>&1 8>&- &
  echo $! >"$dir/cluster.pid"
  until [ -f "$dir/ready" ]; do
    if ! kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null; then
      tail -n 30 "$dir/logs/cluster.log" >&2 || true
      die "the control plane did not start; logs in $dir/logs"
    fi
    sleep 0.1
  done
  local ready=$((SECONDS - started))
  images localhost/test-cluster/pause:1
  images
  say "ready in $ready s, images copied in $((SECONDS - started - ready)) s (logs in $dir/logs)"
  cat "$dir/ready"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  build) build ;;
  env)
    running || die "no cluster runs in $dir"
    cat "$dir/cluster.env"
    # The cluster's own kubectl, built next to its binary: scripts and tests drive the cluster
    # with it, so they need no kubectl on the machine. Why the current build as a fallback: a
    # rebuild removes the earlier build while its cluster runs on.
    kubectl="$(dirname "$(cat "$dir/kube-binary")")/kubectl"
    [ -x "$kubectl" ] || kubectl="$(dirname "$(build)")/kubectl"
    echo "KUBECTL=$kubectl"
    ;;
  images) shift; export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}"; images "$@" ;;
  *) die "usage: scripts/test-cluster.sh up|down|build|env|images" ;;
esac
