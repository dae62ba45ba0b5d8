#!/usr/bin/env bash
# Build TensorRT plan files from an SFN-VAD ONNX export with `trtexec` (on the Jetson / GPU host).
#
#   scripts/trt-engines.sh [--fp16] [--int8] [--max-batch N] [--out DIR] [--dry-run] EXPORT_DIR
#
# EXPORT_DIR is what `sfn-train export` wrote (model.json + encoder.onnx + decoder.onnx); use its int8/
# sub-directory with --int8 (explicit quantisation from the QDQ nodes: no calibration table). Shapes come
# from model.json: batch 1 is the optimisation target, --max-batch the largest batch the engine accepts.
# Engines go to DIR (default EXPORT_DIR/trt): encoder.plan, decoder.plan, plus trtexec's logs.
# --dry-run prints the trtexec commands instead of running them.
#
# Most users do not need plan files: `sfn-train eval-onnx --backend onnxruntime --provider tensorrt
# --trt-cache DIR` (and the edge runtime) let ONNX Runtime's TensorRT provider build and cache engines.
set -euo pipefail

fp16="" int8="" max_batch=8 out="" dry=0 dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --fp16) fp16="--fp16" ;;
        --int8) int8="--int8" ;;
        --max-batch) max_batch="$2"; shift ;;
        --out) out="$2"; shift ;;
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "trt-engines: unknown option $1" >&2; exit 2 ;;
        *) dir="$1" ;;
    esac
    shift
done
[ -n "$dir" ] || { echo "trt-engines: give the export directory (holds model.json)" >&2; exit 2; }
[ -f "$dir/model.json" ] || { echo "trt-engines: $dir/model.json: no such file" >&2; exit 2; }
case "$max_batch" in ''|*[!0-9]*|0) echo "trt-engines: --max-batch must be a positive integer, got '$max_batch'" >&2; exit 2 ;; esac
out="${out:-$dir/trt}"
python="${PYTHON:-python3}"

# "name:1xCxHxW,name2:..." for the given batch, from model.json's graph inputs.
shapes() { # graph batch
    "$python" - "$dir/model.json" "$1" "$2" <<'EOF'
import json, sys
path, graph, batch = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    m = json.load(open(path))
    spec = m[graph]
    parts = []
    for t in spec["inputs"]:
        dims = [batch if isinstance(d, str) else str(d) for d in t["shape"]]
        parts.append(t["name"] + ":" + "x".join(dims))
    print(spec["file"] + " " + ",".join(parts))
except (KeyError, TypeError, ValueError) as e:
    sys.exit(f"trt-engines: {path}: not an sfn-vad model.json ({e!r})")
EOF
}

if [ "$dry" -eq 0 ]; then
    command -v trtexec >/dev/null 2>&1 || { echo "trt-engines: trtexec not found (JetPack: /usr/src/tensorrt/bin/trtexec; add it to PATH)" >&2; exit 2; }
    mkdir -p "$out"
fi
for graph in encoder decoder; do
    read -r file min < <(shapes "$graph" 1)
    read -r _ max < <(shapes "$graph" "$max_batch")
    cmd=(trtexec "--onnx=$dir/$file" "--saveEngine=$out/$graph.plan" "--minShapes=$min" "--optShapes=$min" "--maxShapes=$max")
    [ -n "$fp16" ] && cmd+=("$fp16")
    [ -n "$int8" ] && cmd+=("$int8")
    if [ "$dry" -eq 1 ]; then
        printf '%q ' "${cmd[@]}"; echo
    else
        echo "trt-engines: building $out/$graph.plan"
        "${cmd[@]}" >"$out/$graph.log" 2>&1 || { echo "trt-engines: trtexec failed for $graph; see $out/$graph.log" >&2; exit 1; }
    fi
done
