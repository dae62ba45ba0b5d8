#!/usr/bin/env bash
# Install what the test suite needs outside Rust. Idempotent: a machine that already has
# everything is left untouched and needs no network.
#   - fonts-dejavu-core (Debian/Ubuntu): a TTF font for the plots' text (trainer/src/plot.rs).
#   - <repo>/.venv with numpy + scikit-learn: reference for trainer/tests/auc_sklearn.rs;
#     onnx (checker) and onnxruntime (its libonnxruntime.so is what the `ort` back-end loads):
#     consumers of the exported models in trainer/tests/export.rs and the benchmarks.
# Environment: PYTHON (interpreter used to create the venv, default python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*"; }

# --- font -------------------------------------------------------------------------------
if dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
    say "fonts-dejavu-core already installed"
elif command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    say "installing fonts-dejavu-core (apt-get)"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fonts-dejavu-core >/dev/null
else
    say "no apt-get: install a TTF font yourself or point SFN_FONT at one (plots work without, but unlabelled)"
fi

# --- python venv --------------------------------------------------------------------------
if [ -x "$venv/bin/python" ]; then
    say "venv $venv exists"
else
    say "creating venv $venv with $python"
    "$python" -m venv "$venv"
fi

if "$venv/bin/python" -c 'import numpy, sklearn, onnx, onnxruntime' >/dev/null 2>&1; then
    say "numpy, scikit-learn, onnx and onnxruntime already in the venv"
else
    say "installing numpy, scikit-learn, onnx and onnxruntime into the venv (pip)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy scikit-learn onnx onnxruntime
fi

say "done ($("$venv/bin/python" -c 'import sklearn, numpy, onnx, onnxruntime; print("scikit-learn", sklearn.__version__, "numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__)'))"
