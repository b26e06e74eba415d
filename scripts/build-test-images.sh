#!/usr/bin/env bash
# Builds the container images direct mode's tests run on the test cluster (scripts/test-cluster.sh
# copies them onto its node), locally and without any registry: each image is busybox-static
# plus binaries copied from this machine (Debian's git with its shared libraries, the terraform
# on PATH), packed with `podman import`.
#
# Images (tag :1 is what tests use; a second tag carries the hash of the inputs, so an unchanged
# image is not rebuilt):
#   localhost/test-images/git:1        git (Debian's /usr/bin/git and /usr/lib/git-core)
#   localhost/test-images/runner:1     a shell runner implementing the Humanitec runner contract
#   localhost/test-images/iac-runner:1 the runner plus the machine's terraform and the test
#                                      cluster's kubectl (scripts/test-cluster.sh build, which
#                                      builds it when missing)
#   localhost/test-images/helper:1     the provider's helper image: the provider binary (helper
#                                      prepare|collect), git and ssh; the tests' stand-in for
#                                      containers/helper/Containerfile, built from the binary
#                                      under test
# Their sources: tests/images/ (the runner) and this script.
#
# The helper image's binary: --helper-binary PATH, else $HELPER_BINARY, else
# target/debug/terraform-provider-humanitec when it exists; without one it is skipped.
# --helper-only builds only the helper image (tests refresh it with
# `scripts/build-test-images.sh --helper-only --helper-binary <path>`; an unchanged binary is a
# no-op).
#
# Needs: podman, runc, busybox-static, git (Debian), terraform and Go (not with --helper-only),
# and openssh-client and openssh-server (installed when missing, as root).
# Uses scripts/podman/containers.conf.
set -euo pipefail
cd "$(dirname "$0")/.."

helper_only=false
helper_binary="${HELPER_BINARY:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --helper-only) helper_only=true ;;
    --helper-binary) [ $# -ge 2 ] || { echo "build-test-images: --helper-binary needs a path" >&2; exit 2; }
      helper_binary="$2"; shift ;;
    --helper-binary=*) helper_binary="${1#--helper-binary=}" ;;
    *) echo "usage: scripts/build-test-images.sh [--helper-only] [--helper-binary PATH]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$helper_binary" ] && [ -x target/debug/terraform-provider-humanitec ]; then
  helper_binary=target/debug/terraform-provider-humanitec
fi
if [ -n "$helper_binary" ] && [ ! -x "$helper_binary" ]; then
  echo "build-test-images: the helper binary $helper_binary is not an executable file" >&2; exit 1
fi
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}"

need() { command -v "$1" >/dev/null || { echo "build-test-images: $1 is missing ($2)" >&2; exit 1; }; }
need podman "apt-get install -y podman runc"
need runc "apt-get install -y runc"
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null || { echo "build-test-images: /bin/busybox is missing (apt-get install -y busybox-static)" >&2; exit 1; }
if ldd /bin/busybox >/dev/null 2>&1; then
  echo "build-test-images: /bin/busybox is not static (apt-get install -y busybox-static)" >&2; exit 1
fi
[ -x /usr/bin/git ] || { echo "build-test-images: Debian's git is missing (apt-get install -y git)" >&2; exit 1; }
$helper_only || need terraform "the machine's terraform must be on PATH"
# Why here: the helper image carries ssh, and the git-over-ssh tests run a real sshd; both come
# from Debian's OpenSSH packages, installed when missing and when this runs as root.
if ! $helper_only && { [ ! -x /usr/bin/ssh ] || [ ! -x /usr/sbin/sshd ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build-test-images: installing openssh-client and openssh-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client openssh-server >/dev/null
  else
    echo "build-test-images: ssh or sshd is missing (apt-get install -y openssh-client openssh-server)" >&2; exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A root file system with busybox and its applets, /tmp and the usual directories.
base_root() {
  local root="$1"
  mkdir -p "$root"/{bin,sbin,usr/bin,etc,tmp,root,home/runner,var/tmp,workspace}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nrunner:x:1000:1000:runner:/home/runner:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nrunner:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
  chown 1000:1000 "$root/home/runner"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}

# Copies an ELF binary and the shared libraries it needs (as ldd lists them).
copy_with_libs() {
  local root="$1" file="$2" dest="${3:-$2}"
  install -D -m 0755 "$file" "$root$dest"
  ldd "$file" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
  done
}

# Imports $root as $name:1 unless an image with the same input hash exists.
import_image() {
  local name="$1" root="$2" hash="$3" cmd="$4"
  if podman image exists "$name:in-$hash"; then
    echo "$name:1 is up to date ($hash)"
    podman tag "$name:in-$hash" "$name:1"
    return
  fi
  tar -C "$root" --numeric-owner -cf "$work/$(basename "$name").tar" .
  podman import -q --change "CMD $cmd" --change "ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
    "$work/$(basename "$name").tar" "$name:in-$hash" >/dev/null
  podman tag "$name:in-$hash" "$name:1"
  # Older builds of the same image are no longer needed once they are a day old. Why not at
  # once: tests use an image by its content tag, and another checkout on the machine may be
  # using its own build right now.
  podman images --filter "reference=$name" --filter until=24h --format '{{.Repository}}:{{.Tag}}' | grep ":in-" \
    | grep -v ":in-$hash\$" | xargs -r podman rmi >/dev/null 2>&1 || true
  echo "built $name:1 ($hash)"
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# Debian's git, its helpers (git-remote-https, ...) and their shared libraries.
add_git() {
  local root="$1"
  copy_with_libs "$root" /usr/bin/git
  mkdir -p "$root/usr/lib" "$root/usr/share"
  cp -a /usr/lib/git-core "$root/usr/lib/"
  [ -d /usr/share/git-core ] && cp -a /usr/share/git-core "$root/usr/share/"
  find /usr/lib/git-core -type f -perm -u+x | while read -r f; do
    if [ "$(head -c 4 "$f" | tr -d '\000' | tail -c 3)" = "ELF" ]; then copy_with_libs "$root" "$f"; fi
  done
}

# The helper image: checked for its hash before its root is assembled, so that refreshing it
# with an unchanged binary costs only the hash.
build_helper() {
  if [ -z "$helper_binary" ]; then
    echo "skipped localhost/test-images/helper:1: no helper binary (build it with cargo build, or pass --helper-binary PATH)"
    return
  fi
  local name=localhost/test-images/helper inputs=("$0" /usr/bin/git /bin/busybox "$helper_binary") hash
  [ -x /usr/bin/ssh ] && inputs+=(/usr/bin/ssh)
  hash="$(hash_of "${inputs[@]}")"
  if podman image exists "$name:in-$hash"; then
    echo "$name:1 is up to date ($hash)"
    podman tag "$name:in-$hash" "$name:1"
    return
  fi
  local root="$work/helper"
  base_root "$root"
  add_git "$root"
  [ -x /usr/bin/ssh ] && copy_with_libs "$root" /usr/bin/ssh
  copy_with_libs "$root" "$helper_binary" /usr/local/bin/terraform-provider-humanitec
  import_image "$name" "$root" "$hash" '["/usr/local/bin/terraform-provider-humanitec","--version"]'
}

if $helper_only; then
  build_helper
  exit 0
fi

# True (and :1 tagged) when an image with this input hash exists; then its root need not be
# assembled, so an unchanged image costs only its hash.
up_to_date() {
  local name="$1" hash="$2"
  podman image exists "$name:in-$hash" || return 1
  podman tag "$name:in-$hash" "$name:1"
  echo "$name:1 is up to date ($hash)"
}

# git
hash="$(hash_of "$0" /usr/bin/git /bin/busybox)"
if ! up_to_date localhost/test-images/git "$hash"; then
  root="$work/git"
  base_root "$root"
  add_git "$root"
  import_image localhost/test-images/git "$root" "$hash" '["/usr/bin/git","--version"]'
fi

# runner
runner_script="tests/images/runner.sh"
hash="$(hash_of "$0" "$runner_script" /bin/busybox)"
if ! up_to_date localhost/test-images/runner "$hash"; then
  root="$work/runner"
  base_root "$root"
  install -D -m 0755 "$runner_script" "$root/usr/local/bin/runner"
  import_image localhost/test-images/runner "$root" "$hash" '["/usr/local/bin/runner"]'
fi

# IaC runner
# Why the cluster's kubectl: a Job's kubectl should be the release the test cluster runs, and the
# machine's may be a wrapper (Google Cloud SDK's) that cannot run in a container.
kubectl="$(dirname "$(scripts/test-cluster.sh build)")/kubectl"
hash="$(hash_of "$0" "$runner_script" /bin/busybox "$(command -v terraform)" "$kubectl")"
if ! up_to_date localhost/test-images/iac-runner "$hash"; then
  root="$work/iac"
  base_root "$root"
  install -D -m 0755 "$runner_script" "$root/usr/local/bin/runner"
  install -D -m 0755 "$(command -v terraform)" "$root/usr/local/bin/terraform"
  copy_with_libs "$root" "$kubectl" /usr/local/bin/kubectl
  import_image localhost/test-images/iac-runner "$root" "$hash" '["/usr/local/bin/runner"]'
fi

# helper
build_helper
