#!/usr/bin/env bash
# Runs every test: unit tests (codec, framework, payloads, API client, sandbox against the
# OpenAPI spec), the end-to-end tests that drive the real terraform CLI (and tofu, when it is
# on PATH) against the sandbox, and the Kubernetes test world's tests (its pod tests need podman
# and the images of scripts/build-test-images.sh); direct mode's tests also run on the test cluster
# of scripts/test-cluster.sh (Go, root, containerd).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v terraform >/dev/null || { echo "terraform is not on PATH; the end-to-end tests need it" >&2; exit 1; }
# The test cluster for direct mode's tests: built and started here (so a build shows as such, not
# as a slow test), stopped at the end unless it was running before.
if ! scripts/test-cluster.sh env >/dev/null 2>&1; then
  trap 'scripts/test-cluster.sh down' EXIT
fi
scripts/test-cluster.sh up >/dev/null
cargo test --all-targets --no-fail-fast "$@"
if command -v tofu >/dev/null; then
  echo "running the end-to-end tests again with $(command -v tofu)"
  TF_ACC_TERRAFORM_PATH="$(command -v tofu)" cargo test --test integration --no-fail-fast "$@"
fi
