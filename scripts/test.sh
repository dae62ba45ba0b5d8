#!/usr/bin/env bash
# The whole test suite: installs what the tests need outside Rust, then lint + tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo clippy --release --workspace --all-targets -- -D warnings
# Opt-in features are compile-checked (and linted): GPU providers of ONNX Runtime (no GPU in CI), the
# camera / video sources (no camera here; video is also tested below), the GPIO character device.
cargo clippy --release -p sfn-infer -p sfn-trainer --features sfn-infer/cuda,sfn-infer/tensorrt -- -D warnings
cargo clippy --release -p sfn-edge -p sfn-sources -p sfn-host --all-targets --features sfn-edge/ort,sfn-edge/cuda,sfn-edge/tensorrt,sfn-edge/video,sfn-edge/v4l,sfn-edge/gpio-cdev,sfn-host/video -- -D warnings
cargo test --release --workspace
cargo test --release -p sfn-sources --features video
