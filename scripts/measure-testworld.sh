#!/usr/bin/env bash
# Measures the Kubernetes test world for closing notes: start time, a pod's time from creation to
# its container running under podman (kube-testworld/examples/measure.rs), and the time of the
# test world's whole test suite and of the workspace's.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-test-images.sh >/dev/null
cargo build -q -p kube-testworld --example measure --tests
cargo run -q -p kube-testworld --example measure
start=$(date +%s.%N)
cargo test -q -p kube-testworld >/dev/null 2>&1
echo "cargo test -p kube-testworld (built): $(echo "$(date +%s.%N) - $start" | bc) s"
start=$(date +%s.%N)
cargo test -q --all-targets >/dev/null 2>&1
echo "cargo test --all-targets, whole workspace (built): $(echo "$(date +%s.%N) - $start" | bc) s"
