#!/usr/bin/env bash
# Runs every test, on a fresh machine too: first scripts/setup.sh installs what is missing (or
# says exactly what it cannot install), then
#   1. every test of the workspace (unit tests: codec, framework, payloads, API client; the
#      sandbox's, against the OpenAPI spec; the end-to-end tests) with the end-to-end tests
#      driving the real `terraform` on PATH against the sandbox;
#   2. the end-to-end tests again, driving OpenTofu's `tofu`, built from its Go module by
#      scripts/tools.sh (never skipped).
# Both runs always happen; the command fails if either fails. Arguments go to both `cargo test`
# runs (for example a test name filter). Direct mode's tests run on the test cluster of
# scripts/test-cluster.sh (a real control plane and kubelet, built from Kubernetes' Go modules),
# started here so that its build shows as such, and stopped at the end unless it was running.
# The tests of a managed cluster (`real_cluster`, which read KUBECONFIG) are ignored here; run
# them with `KUBECONFIG=... cargo test --test integration real_cluster -- --ignored`.
set -euo pipefail
cd "$(dirname "$0")/.."

tofu=$(scripts/setup.sh test | sed -n 's/^TOFU=//p')
terraform=$(command -v terraform)
if ! scripts/test-cluster.sh env >/dev/null 2>&1; then
  trap 'scripts/test-cluster.sh down' EXIT
fi
scripts/test-cluster.sh up >/dev/null

# One section of the run: its title, then the command; the status and time are recorded.
failed=()
section() {
  local title="$1" start=$SECONDS status=0
  shift
  echo "== $title" >&2
  "$@" || status=$?
  echo "== $title: $([ $status = 0 ] && echo passed || echo "FAILED ($status)") in $((SECONDS - start)) s" >&2
  [ $status = 0 ] || failed+=("$title")
}

# HUMANITEC_TEST_OTHER_CLI: the test that moves one working directory between the CLIs drives
# the other one too.
section "every test; end-to-end with $(TF_CLI_CONFIG_FILE=/dev/null "$terraform" version | head -n1)" \
  env TF_ACC_TERRAFORM_PATH="$terraform" HUMANITEC_TEST_OTHER_CLI="$tofu" \
  cargo test --workspace --all-targets --no-fail-fast "$@"
section "end-to-end tests with $(TF_CLI_CONFIG_FILE=/dev/null "$tofu" version | head -n1)" \
  env TF_ACC_TERRAFORM_PATH="$tofu" HUMANITEC_TEST_OTHER_CLI="$terraform" \
  cargo test --test integration --no-fail-fast "$@"

if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: failed: ${failed[*]}" >&2
  exit 1
fi
