#!/usr/bin/env bash
# The quickstart: builds the provider and the sandbox, starts the sandbox API on 127.0.0.1,
# applies examples/quickstart with the real terraform CLI, shows the resulting definitions,
# then destroys them and stops the sandbox. No Humanitec account is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v terraform >/dev/null || { echo "terraform is not on PATH" >&2; exit 1; }
cargo build --quiet --bins
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

cp examples/quickstart/*.tf "$work/"
cat >"$work/dev.tfrc" <<TFRC
provider_installation {
  dev_overrides {
    "container-runner/humanitec" = "$bin_dir"
  }
  direct {}
}
TFRC
export TF_CLI_CONFIG_FILE="$work/dev.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export TF_VAR_api_prefix="$url" TF_VAR_token="$token"

(cd "$work" && terraform apply -auto-approve -input=false)

echo
echo "Definitions now in the sandbox (GET /orgs/quickstart/resources/defs):"
curl -sS -H "Authorization: Bearer $token" "${url}orgs/quickstart/resources/defs" | python3 -m json.tool

echo
(cd "$work" && terraform destroy -auto-approve -input=false)
echo "Quickstart finished: created, shown and destroyed."
