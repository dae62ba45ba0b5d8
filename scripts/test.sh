#!/usr/bin/env bash
# The whole test suite: installs what the tests need outside Rust, then lint + tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# step CMD...: runs one step and records its wall time; the times are printed at the end (and on failure),
# so a slow CI run shows which step grew.
times=""
step() {
    local t0=$SECONDS
    "$@"
    times="$times$(printf '%6d s  %s' $((SECONDS - t0)) "$*" | cut -c1-150)"$'\n'
}
trap 'printf "test.sh: step times (wall)\n%s%6d s  in all\n" "$times" "$SECONDS" >&2' EXIT
step bash scripts/setup.sh
step cargo fmt --all --check
step cargo clippy --release --workspace --all-targets -- -D warnings
# The camera runtime without its opt-in features (the tests turn `semantic` on).
step cargo clippy --release -p sfn-edge -- -D warnings
# Layering: the device side builds without the training stack.
edge_tree="$(cargo tree -p sfn-edge -e normal --prefix none)"
host_tree="$(cargo tree -p sfn-host -e normal --prefix none)"
for c in candle-core candle-transformers tokenizers plotters sfn-trainer sfn-models; do
    if grep -q "^$c v" <<<"$edge_tree"; then echo "layering: sfn-edge (default features) depends on $c" >&2; exit 1; fi
done
for c in candle-core sfn-trainer; do
    if grep -q "^$c v" <<<"$host_tree"; then echo "layering: sfn-host depends on $c" >&2; exit 1; fi
done
# Opt-in features are compile-checked (and linted): GPU providers of ONNX Runtime (no GPU in CI), the
# camera / video sources (no camera here; video is also tested below), the GPIO character device.
step cargo clippy --release -p sfn-infer -p sfn-trainer --features sfn-infer/cuda,sfn-infer/tensorrt,sfn-trainer/video -- -D warnings
step cargo clippy --release -p sfn-edge -p sfn-sources -p sfn-host -p sfn-data --all-targets --features sfn-data/video,sfn-edge/ort,sfn-edge/cuda,sfn-edge/tensorrt,sfn-edge/semantic,sfn-edge/video,sfn-edge/v4l,sfn-edge/gpio-cdev,sfn-host/video -- -D warnings
# The GPU check script (scripts/gpu-check.sh): its bench is compiled with the CUDA and TensorRT features
# by the line above (--all-targets); here the script itself is parsed and its command line printed.
bash -n scripts/gpu-check.sh && bash scripts/gpu-check.sh --dry-run
# The workspace build has FFmpeg on (tests/Cargo.toml): video files, network streams and datasets given
# as video files are tested here too.
step cargo test --release --workspace --no-run
step cargo test --release --workspace
# The camera service as a Debian package: layout, units, the packaged binary; as root a real install.
step bash scripts/check-deb.sh
