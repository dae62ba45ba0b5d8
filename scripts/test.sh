#!/usr/bin/env bash
# The whole test suite: installs what the tests need outside Rust, then lint + tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
