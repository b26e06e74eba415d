#!/usr/bin/env bash
# Runs every test: unit tests (codec, framework, payloads, API client, sandbox against the
# OpenAPI spec), the end-to-end tests that drive the real terraform CLI (and tofu, when it is
# on PATH) against the sandbox, and the Kubernetes test world's tests (its pod tests need podman
# and the images of scripts/build-test-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v terraform >/dev/null || { echo "terraform is not on PATH; the end-to-end tests need it" >&2; exit 1; }
cargo test --all-targets --no-fail-fast "$@"
if command -v tofu >/dev/null; then
  echo "running the end-to-end tests again with $(command -v tofu)"
  TF_ACC_TERRAFORM_PATH="$(command -v tofu)" cargo test --test integration --no-fail-fast "$@"
fi
