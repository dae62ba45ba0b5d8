#!/usr/bin/env bash
# Build sfn-edge for aarch64-unknown-linux-gnu (Jetson) without rustup targets: Debian's rustc-web/cargo-web
# with the arm64 libstd-rust-web-dev as sysroot, gcc-aarch64-linux-gnu as linker (see cross/README.md).
#
#   cross/build.sh [--gpu | --deb] [--verify CLIP_DIR]
#
#   --gpu      the Jetson build: ONNX Runtime (features ort,cuda,tensorrt; libonnxruntime is loaded at run
#              time, so nothing GPU-specific is linked) and the semantic branch (captions; links candle);
#              default: the CPU-only tract build without captions.
#   --deb      the Debian package's build (features v4l, ort, gpio-cdev, as `cargo deb` builds it on
#              the host), packed by cargo-deb: target/cross/debian/sfn-edge_<version>-1_arm64.deb.
#   --verify   run the x86_64 and the aarch64 (under qemu-aarch64) binaries on the same clip with the
#              committed Ped2 model and fixed timestamps, and compare their packets.
# Output: target/cross/aarch64-unknown-linux-gnu/release/sfn-edge
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
features="" verify="" deb=""
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) features="--features ort,cuda,tensorrt,semantic" ;;
        --deb) features="--features v4l,ort,gpio-cdev" deb=1 ;;
        --verify) verify="$2"; shift ;;
        *) echo "cross/build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
need() { command -v "$1" >/dev/null 2>&1 || { echo "cross/build.sh: $1 missing: apt-get install $2 (or build in cross/Dockerfile)" >&2; exit 2; }; }
[ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || { echo "cross/build.sh: Debian's cargo-web / rustc-web missing (/usr/bin/cargo, /usr/bin/rustc)" >&2; exit 2; }
[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] || { echo "cross/build.sh: arm64 std missing: dpkg --add-architecture arm64 && apt-get install libstd-rust-web-dev:arm64" >&2; exit 2; }
need aarch64-linux-gnu-gcc "gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross"

echo "cross/build.sh: building sfn-edge for aarch64 ${features:-(tract, CPU)}"
# bindgen (the v4l feature) must read the arm64 kernel headers, not the host's.
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu -I/usr/aarch64-linux-gnu/include"
# Debian's toolchain (not rustup's) so the arm64 std from libstd-rust-web-dev is found; its own target dir.
RUSTC=/usr/bin/rustc /usr/bin/cargo build --release -p sfn-edge --target aarch64-unknown-linux-gnu \
    --config cross/cargo-config.toml --target-dir target/cross $features
bin="target/cross/aarch64-unknown-linux-gnu/release/sfn-edge"
file "$bin" 2>/dev/null || true
echo "cross/build.sh: $bin"
if [ -n "$deb" ]; then
    need aarch64-linux-gnu-strip binutils-aarch64-linux-gnu
    command -v cargo-deb >/dev/null 2>&1 || { echo "cross/build.sh: cargo-deb missing (scripts/setup.sh installs it)" >&2; exit 2; }
    # Pack the binary just built (no second build); cargo-deb strips it with the aarch64 binutils.
    CARGO_TARGET_DIR=target/cross cargo deb -p sfn-edge --target aarch64-unknown-linux-gnu --no-build --output target/cross/debian
fi

if [ -n "$verify" ]; then
    need qemu-aarch64 qemu-user
    [ -d "$verify" ] || { echo "cross/build.sh: --verify $verify: no such folder of frames" >&2; exit 2; }
    cargo build --release -p sfn-edge -p sfn-host
    tmp="$(mktemp -d)"
    for arch in x86_64 aarch64; do
        cat > "$tmp/$arch.toml" <<TOML
device = "cross-$arch"
[model]
dir = "$repo/assets/ped2-cpu/onnx"
[source]
kind = "folder"
path = "$(cd "$verify" && pwd)"
realtime = false
start_time_ms = 1764331200000
[sinks]
packet_file = "$tmp/$arch.bin"
TOML
    done
    ./target/release/sfn-edge run --config "$tmp/x86_64.toml" 2>/dev/null
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" run --config "$tmp/aarch64.toml" 2>/dev/null
    ./target/release/sfn-host decode --json "$tmp/x86_64.bin" > "$tmp/x86_64.jsonl"
    ./target/release/sfn-host decode --json "$tmp/aarch64.bin" > "$tmp/aarch64.jsonl"
    python3 - "$tmp/x86_64.jsonl" "$tmp/aarch64.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and a, f"packet counts differ: {len(a)} vs {len(b)}"
worst = 0.0
for p, q in zip(a, b):
    assert (p["seq"], p["frame"], p["timestamp_ms"], p["alarm"], p["model_id"]) == (q["seq"], q["frame"], q["timestamp_ms"], q["alarm"], q["model_id"]), (p, q)
    for k in ("score", "visual_z"):
        worst = max(worst, abs(p[k] - q[k]) / max(1.0, abs(p[k])))
assert worst <= 1e-4, f"scores differ by {worst:.2e} (relative)"
print(f"cross/build.sh: {len(a)} packets: x86_64 and aarch64 agree (frames, alarms; scores to {worst:.1e} relative)")
PY
    bytes_equal="differ in the low bits of some scores"
    cmp -s "$tmp/x86_64.bin" "$tmp/aarch64.bin" && bytes_equal="are bit-identical"
    echo "cross/build.sh: the two packet files $bytes_equal"
fi
