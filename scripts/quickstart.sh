#!/usr/bin/env bash
# The quickstart: builds the provider and the sandbox, installs the provider the way a user
# would (release files -> a filesystem mirror -> `terraform init`, all in a temporary directory,
# no dev_overrides), starts the sandbox API on 127.0.0.1, applies examples/quickstart with the
# real terraform CLI, shows the resulting definitions, then destroys them and stops the sandbox.
# No Humanitec account is needed.
#
# Usage: scripts/quickstart.sh [--tofu | --direct]
#
# It sets the machine up first (scripts/setup.sh quickstart: curl and python3 when missing; it
# names what it cannot install). --tofu does the same with OpenTofu's `tofu init` and
# `tofu apply`, `tofu` built from OpenTofu's Go module by scripts/tools.sh. --direct runs the
# direct-mode quickstart instead (scripts/quickstart-direct.sh): the Container Runner page's S3
# example run for real on a local test cluster (a real Kubernetes, scripts/test-cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--direct" ]; then
  exec scripts/quickstart-direct.sh
fi

cli=terraform
case "${1:-}" in
  "") setup=$(scripts/setup.sh quickstart) ;;
  --tofu) setup=$(scripts/setup.sh quickstart --tofu); cli=$(echo "$setup" | sed -n 's/^TOFU=//p') ;;
  *) echo "usage: scripts/quickstart.sh [--tofu | --direct]" >&2; exit 2 ;;
esac
cargo build --quiet --bins -p terraform-provider-humanitec -p humanitec-sandbox
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin_dir="$target_dir/debug"

work=$(mktemp -d)
sandbox_pid=""
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

token=quickstart-token
"$bin_dir/humanitec-sandbox" --token "$token" >"$work/sandbox.url" 2>"$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 50); do [ -s "$work/sandbox.url" ] && break; sleep 0.1; done
url=$(head -n1 "$work/sandbox.url")
echo "humanitec-sandbox is serving the Resource Definitions API at $url"

# Why package the debug build: it is already built for the sandbox, and a release build
# would take minutes more on a fresh machine. The install path is the same for both.
scripts/release.sh --binary "$bin_dir/terraform-provider-humanitec" --out "$work/dist" >/dev/null
scripts/install-mirror.sh --from "$work/dist" "$work/mirror" >/dev/null

mkdir "$work/config"
cp examples/quickstart/*.tf "$work/config/"
# The same CLI configuration serves Terraform and OpenTofu: the bare source address means
# registry.terraform.io/... to one and registry.opentofu.org/... to the other, and the mirror
# holds both.
cat >"$work/mirror.tfrc" <<TFRC
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/container-runner/humanitec", "registry.opentofu.org/container-runner/humanitec"]
  }
  direct {
    exclude = ["registry.terraform.io/container-runner/humanitec", "registry.opentofu.org/container-runner/humanitec"]
  }
}
TFRC
export TF_CLI_CONFIG_FILE="$work/mirror.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export TF_VAR_api_prefix="$url" TF_VAR_token="$token"

cd "$work/config"
# Why lock before init: a mirror cannot supply signed checksums, so a first init would warn
# that the lock file covers only this platform. Recording the checksums first (what a team
# commits, for every platform it uses) is the documented remedy.
"$cli" providers lock -fs-mirror="$work/mirror" -platform="$("$cli" version -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["platform"])')"
"$cli" init -input=false
"$cli" apply -auto-approve -input=false

echo
echo "Definitions now in the sandbox (GET /orgs/quickstart/resources/defs):"
curl -sS -H "Authorization: Bearer $token" "${url}orgs/quickstart/resources/defs" | python3 -m json.tool

echo
"$cli" destroy -auto-approve -input=false
echo "Quickstart finished with $("$cli" version | head -n1): created, shown and destroyed."
