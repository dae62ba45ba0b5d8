#!/usr/bin/env bash
# The GPU path, on a machine with an NVIDIA GPU: ONNX Runtime's CUDA provider (and TensorRT where its
# libraries load) on the committed Ped2 export, frames/s for 1 and 8 cameras, and 8 with their calls
# batched (`model.max_batch = 8`), beside the CPU (tract and ONNX Runtime on one core each), in one
# table from one run of the replay bench.
#
#   scripts/gpu-check.sh [--ort-lib PATH] [--data ROOT] [--frames N] [--dry-run]
#
# Needs: the Rust toolchain, the NVIDIA driver, the CUDA 12 and cuDNN 9 runtime libraries on the loader
# path, and a libonnxruntime.so built with CUDA: --ort-lib, else ORT_DYLIB_PATH, else the one inside the
# `onnxruntime-gpu` wheel of $PYTHON (default python3). Ped2 from --data, else $SFN_DATA/ped2, else
# ../shared/data/ped2. A provider that cannot be registered gets a "failed" row naming why; the others run.
# --dry-run prints what would run. CI has no GPU: there the bench is only compiled (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

lib="${ORT_DYLIB_PATH:-}" data="" frames="" dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --ort-lib) lib="$2"; shift ;;
        --data) data="$2"; shift ;;
        --frames) frames="$2"; shift ;;
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
python="${PYTHON:-python3}"
if [ -z "$lib" ]; then
    lib="$("$python" - <<'PY' 2>/dev/null || true
import glob, os
import onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
libs = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")))
print(libs[0] if libs else "")
PY
)"
fi
args=(--only gpu)
[ -n "$lib" ] && args+=(--ort-lib "$lib")
[ -n "$data" ] && args+=(--data "$data")
[ -n "$frames" ] && args+=(--frames "$frames")
cmd=(cargo bench -p sfn-edge --features cuda,tensorrt --bench replay -- "${args[@]}")
if [ "$dry" = 1 ]; then
    echo "ORT library: ${lib:-<none found>}"
    echo "${cmd[*]}"
    exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L || { echo "gpu-check: no NVIDIA GPU here (nvidia-smi missing or failing)" >&2; exit 1; }
[ -n "$lib" ] && [ -f "$lib" ] || { echo "gpu-check: no libonnxruntime.so with CUDA: pip install onnxruntime-gpu, or give --ort-lib / ORT_DYLIB_PATH" >&2; exit 1; }
# The CUDA provider library sits beside libonnxruntime.so in the wheel.
[ -f "$(dirname "$lib")/libonnxruntime_providers_cuda.so" ] || echo "gpu-check: note: no libonnxruntime_providers_cuda.so beside $lib: the CUDA rows will fail" >&2
export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "${cmd[@]}"
