#!/usr/bin/env bash
# The direct-mode quickstart (`./scripts/quickstart.sh --direct`): the Container Runner page's
# S3 container runner, run for real by the provider itself, with no Humanitec account and no
# registry:
#
#   1. sets the machine up (scripts/setup.sh direct: containerd, podman, runc, busybox-static,
#      git when missing; it names Go when it is missing), builds the provider and
#      the test images (scripts/build-test-images.sh: the `terraform` runner image, from this
#      machine's Debian packages and terraform);
#   2. writes the release files with the helper image archive (scripts/release.sh
#      --helper-image) and loads that archive with `podman load`, under its default name, so
#      the runner config needs no helper_image;
#   3. starts a test cluster of its own (scripts/test-cluster.sh up, with TEST_CLUSTER_DIR in
#      its temporary directory: a real Kubernetes v1.34.4 on 127.0.0.1, built from Kubernetes'
#      Go modules the first time, about 10 minutes on 2 cores), copies the images onto its node,
#      applies the namespace and RBAC of the direct-mode guide, and starts a git server (git
#      daemon, on this machine's address, where the pods reach it) with
#      examples/quickstart-direct/infra;
#   4. installs the provider the way a user would (a filesystem mirror and `terraform init`),
#      applies examples/quickstart-direct, shows the run's outputs, and destroys it.
#
# Everything it starts is stopped (the cluster with scripts/test-cluster.sh down), and its
# temporary directory removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# Why an absolute path: the clean-up runs after the script has moved into its working directory.
repo=$PWD

scripts/setup.sh direct
command -v terraform >/dev/null || { echo "terraform is not on PATH" >&2; exit 1; }
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}"

step() { printf '\n== %s\n' "$*"; }

step "Building the provider and the test images"
cargo build --quiet --bin terraform-provider-humanitec
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin_dir="$target_dir/debug"
scripts/build-test-images.sh --helper-binary "$bin_dir/terraform-provider-humanitec" >/dev/null

work=$(mktemp -d)
export TEST_CLUSTER_DIR="$work/cluster"
git_pid=""
cleanup() {
  [ -n "$git_pid" ] && kill "$git_pid" 2>/dev/null || true
  # Stops the cluster's control plane and node, and removes its pods and network.
  "$repo/scripts/test-cluster.sh" down || true
  rm -rf "$work"
}
trap cleanup EXIT

step "Writing the release files, with the helper image archive, and loading the helper image"
scripts/release.sh --binary "$bin_dir/terraform-provider-humanitec" --helper-image --out "$work/dist" \
  | sed "s|$work/dist/||"
archive=$(ls "$work"/dist/terraform-provider-humanitec-helper_*_linux_*.oci.tar)
podman load -q -i "$archive"
# The archive loads under the default helper_image, whose tag is the release's version.
version=$(basename "$archive" | sed 's/^terraform-provider-humanitec-helper_\(.*\)_linux_.*$/\1/')
helper_image="ghcr.io/container-runner/terraform-provider-humanitec-helper:$version"

step "Starting the test cluster (a real Kubernetes) and a git server its pods reach"
kubeconfig=$(scripts/test-cluster.sh up | tail -n 1)
# The node pulls from no registry: the runner image was copied by `up`, the helper image now.
scripts/test-cluster.sh images "$helper_image"
node_ip=$(scripts/test-cluster.sh env | sed -n 's/^NODE_IP=//p')
# The cluster's own kubectl (of its release), so no kubectl needs installing.
kubectl=$(scripts/test-cluster.sh env | sed -n 's/^KUBECTL=//p')
echo "test cluster: KUBECONFIG=$kubeconfig"
# The namespace, the Job's service account and its RBAC (docs/guides/direct-mode.md, "RBAC").
"$kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: humanitec-runner
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: humanitec-runner-job, namespace: humanitec-runner}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: humanitec-runner-job, namespace: humanitec-runner}
rules:
- {apiGroups: [""], resources: [secrets, configmaps], verbs: [create]}
- {apiGroups: [""], resources: [secrets], verbs: [get, list, create, update, delete]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: humanitec-runner-job, namespace: humanitec-runner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: humanitec-runner-job}
subjects: [{kind: ServiceAccount, name: humanitec-runner-job, namespace: humanitec-runner}]
YAML

mkdir -p "$work/git/infra.git"
cp -r examples/quickstart-direct/infra/. "$work/git/infra.git/"
git_in() {
  git -C "$work/git/infra.git" -c user.name=Quickstart -c user.email=quickstart@example.com "$@"
}
GIT_CONFIG_NOSYSTEM=1 git_in init -q -b main
GIT_CONFIG_NOSYSTEM=1 git_in add -A
GIT_CONFIG_NOSYSTEM=1 git_in commit -q -m "The S3 bucket's code"
git_port=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$node_ip")
git daemon --reuseaddr --export-all --listen="$node_ip" --port="$git_port" \
  --base-path="$work/git" "$work/git" 2>"$work/git.log" &
git_pid=$!
for _ in $(seq 50); do
  git ls-remote "git://$node_ip:$git_port/infra.git" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "git server: git://$node_ip:$git_port/infra.git"

step "Installing the provider from a filesystem mirror"
scripts/install-mirror.sh --from "$work/dist" "$work/mirror" >/dev/null
mkdir "$work/config"
cp examples/quickstart-direct/main.tf "$work/config/"
cat >"$work/mirror.tfrc" <<TFRC
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/container-runner/humanitec"]
  }
  direct {
    exclude = ["registry.terraform.io/container-runner/humanitec"]
  }
}
TFRC
export TF_CLI_CONFIG_FILE="$work/mirror.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export TF_VAR_kubeconfig_path="$kubeconfig" TF_VAR_git_url="git://$node_ip:$git_port/infra.git"
cd "$work/config"
terraform providers lock -fs-mirror="$work/mirror" -platform="$(terraform version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["platform"])')" >/dev/null
terraform init -input=false >/dev/null

step "terraform apply: the provider runs the container runner as a Job"
terraform apply -auto-approve -input=false

step "The run's outputs"
terraform output
echo "secret_outputs (sensitive; shown here for the quickstart only):"
terraform output -json secret_outputs

step "terraform destroy: the provider runs ACTION=destroy"
terraform destroy -auto-approve -input=false
echo
echo "Direct-mode quickstart finished: run, shown and destroyed."
