#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]      default: 60 s, all targets
#   SFN_FUZZ_MERGE=1 scripts/fuzz.sh 300                   also merge new coverage into fuzz/corpus
#
# Targets: packet_stream (wire deframer + packet decoder + field-unit firmware core), edge_config
# (sfn-edge TOML config + --set overrides), model_manifest (model.json loader). Their bodies are in
# fuzz/targets (sfn-fuzz-targets); `cargo test` replays fuzz/corpus and fuzz/regressions through
# them on stable, so CI keeps every fixed crash fixed without running the fuzzer.
#
# Needs a nightly toolchain (libFuzzer + AddressSanitizer: -Zsanitizer), SFN_FUZZ_TOOLCHAIN to
# name another one, and installs cargo-fuzz from crates.io when it is missing. A crash stops the
# run: the input is in fuzz/artifacts/<target>/; once fixed, copy it to fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(packet_stream edge_config model_manifest)
fi
toolchain=${SFN_FUZZ_TOOLCHAIN:-nightly}

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the '$toolchain' toolchain is not installed (cargo fuzz needs nightly: rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --version '^0.13'
fi

for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "fuzz.sh: no target $t (fuzz/fuzz_targets/$t.rs)" >&2
        exit 2
    fi
    work="fuzz/corpus-work/$t"
    mkdir -p "$work" "fuzz/corpus/$t"
    echo "== $t: ${secs}s"
    # New inputs go to the (ignored) work folder; the committed seeds are read too.
    cargo "+$toolchain" fuzz run "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
    if [ "${SFN_FUZZ_MERGE:-0}" = 1 ]; then
        cargo "+$toolchain" fuzz cmin "$t" "fuzz/corpus/$t" >/dev/null 2>&1 || true
        cargo "+$toolchain" fuzz run "$t" "fuzz/corpus/$t" "$work" -- -merge=1 >/dev/null
    fi
done
echo "fuzz.sh: no crash in ${#targets[@]} target(s), ${secs}s each"
