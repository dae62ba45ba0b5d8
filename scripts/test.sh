#!/usr/bin/env bash
# The whole test suite: installs what the tests need outside Rust, then lint + tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo clippy --release --workspace --all-targets -- -D warnings
# GPU code (ONNX Runtime CUDA / TensorRT providers) is opt-in: CI has no GPU, so it is compile-checked only.
cargo clippy --release -p sfn-infer -p sfn-trainer --features sfn-infer/cuda,sfn-infer/tensorrt -- -D warnings
cargo test --release --workspace
