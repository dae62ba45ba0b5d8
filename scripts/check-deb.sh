#!/usr/bin/env bash
# Builds the sfn-edge Debian package (`cargo deb -p sfn-edge`) and checks it:
#   - layout: binary, conffile /etc/sfn-vad/edge.toml, the Ped2 model, both systemd units, docs;
#     maintainer scripts parse; the binary is stripped (line tables go to the -dbgsym package);
#   - the units pass `systemd-analyze verify` without a warning;
#   - the packaged binary accepts the packaged config and runs the packaged model on a Ped2 clip;
#   - as root (CI; skipped when sfn-edge is already installed, or with SFN_NO_INSTALL_TEST=1): a real
#     install (system user, its groups, directories), `sfn-edge check` as that user on the installed
#     config, an upgrade that keeps an edited conffile, and a purge.
# Environment: SFN_DATA (the Ped2 root, default ../shared/data/ped2) for a Ped2 clip (the runs that need it are skipped without).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
say() { printf 'check-deb: %s\n' "$*"; }
fail() {
    printf 'check-deb: FAILED: %s\n' "$*" >&2
    exit 1
}

cargo deb -p sfn-edge --quiet
arch="$(dpkg --print-architecture)"
version="$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="sfn-edge"))')"
deb="target/debian/sfn-edge_${version}-1_${arch}.deb"
[ -f "$deb" ] || fail "no $deb"
say "$deb ($(du -h "$deb" | cut -f1))"

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root="$work/root"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$work/control"

# --- layout ----------------------------------------------------------------------------------
for f in usr/bin/sfn-edge etc/sfn-vad/edge.toml \
    usr/share/sfn-vad/models/ped2-cpu/model.json usr/share/sfn-vad/models/ped2-cpu/encoder.onnx usr/share/sfn-vad/models/ped2-cpu/decoder.onnx \
    usr/lib/systemd/system/sfn-edge.service usr/lib/systemd/system/sfn-edge@.service \
    usr/share/doc/sfn-edge/deployment.md usr/share/doc/sfn-edge/edge.example.toml; do
    [ -e "$root/$f" ] || fail "$f missing from the package"
done
cmp -s "$root/usr/share/sfn-vad/models/ped2-cpu/decoder.onnx" assets/ped2-cpu/onnx/decoder.onnx || fail "packaged model differs from assets/ped2-cpu/onnx"
grep -qx /etc/sfn-vad/edge.toml "$work/control/conffiles" || fail "edge.toml is not a conffile"
for s in postinst postrm prerm; do
    [ -x "$work/control/$s" ] || fail "maintainer script $s missing"
    sh -n "$work/control/$s" || fail "maintainer script $s does not parse"
done
grep -q '^Depends:.*adduser' "$work/control/control" || fail "Depends lacks adduser"
if readelf -S "$root/usr/bin/sfn-edge" | grep -qE '\.debug_(info|line)'; then fail "usr/bin/sfn-edge is not stripped"; fi

# --- units -----------------------------------------------------------------------------------
# verify checks that ExecStart's binary exists: point it at the extracted one.
units="$work/units"
mkdir -p "$units"
for u in sfn-edge.service sfn-edge@.service; do
    sed "s|/usr/bin/sfn-edge|$root/usr/bin/sfn-edge|" "$root/usr/lib/systemd/system/$u" >"$units/$u"
done
for u in sfn-edge.service sfn-edge@cam1.service; do
    out="$(systemd-analyze verify --man=no "$units/$u" 2>&1)" || fail "systemd-analyze verify $u: $out"
    if grep -q sfn-edge <<<"$out"; then fail "systemd-analyze verify $u: $out"; fi
done
for key in 'Type=notify' 'WatchdogSec=' 'Restart=on-failure' 'RestartPreventExitStatus=78' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes' 'DeviceAllow=char-video4linux' 'DeviceAllow=char-gpiochip'; do
    grep -q "^$key" "$root/usr/lib/systemd/system/sfn-edge.service" || fail "sfn-edge.service lacks $key"
done
grep -q -- '--config /etc/sfn-vad/%i.toml' "$root/usr/lib/systemd/system/sfn-edge@.service" || fail "the template does not read /etc/sfn-vad/%i.toml"
say "layout, conffile, maintainer scripts and units ok"

# --- the packaged binary on the packaged config and model --------------------------------------
# (a Ped2 clip as the source; skipped, like the other Ped2 tests, where ../shared is absent)
clip="${SFN_DATA:-$repo/../shared/data/ped2}/testing/frames/01"
bin="$root/usr/bin/sfn-edge"
if [ -d "$clip" ]; then
    set_args=(--set "model.dir=\"$root/usr/share/sfn-vad/models/ped2-cpu\"" --set 'source.kind="folder"' --set "source.path=\"$clip\"" --set 'source.realtime=false' --set "sinks.mqtt.spool_dir=\"$work/spool\"" --set 'sinks.mqtt.port=1')
    "$bin" check --config "$root/etc/sfn-vad/edge.toml" "${set_args[@]}" >/dev/null || fail "packaged binary rejects the packaged config"
    scored="$(RUST_LOG=off "$bin" run --config "$root/etc/sfn-vad/edge.toml" "${set_args[@]}" --set 'sinks.stdout=true' --max-frames 12 2>/dev/null | grep -c '"kind":"frame"')"
    [ "$scored" = 8 ] || fail "packaged binary scored $scored frames of 12 (expected 8)"
    say "packaged binary runs the packaged model on the packaged config"
else
    say "packaged binary run skipped: no Ped2 clip at $clip (set SFN_DATA)"
fi

# --- a real install, upgrade and purge ------------------------------------------------------
if [ "$(id -u)" -ne 0 ] || [ -n "${SFN_NO_INSTALL_TEST:-}" ]; then
    say "install test skipped (needs root; SFN_NO_INSTALL_TEST unset)"
    exit 0
fi
if dpkg -s sfn-edge >/dev/null 2>&1; then
    say "install test skipped: sfn-edge is already installed here"
    exit 0
fi
purge() { dpkg --purge sfn-edge >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT
dpkg -i "$deb" >/dev/null || fail "dpkg -i"
getent passwd sfn-vad >/dev/null || fail "no system user sfn-vad"
if getent group video >/dev/null; then id -nG sfn-vad | grep -qw video || fail "sfn-vad not in group video"; fi
for d in /var/lib/sfn-vad/spool /var/cache/sfn-vad/trt; do
    [ "$(stat -c %U "$d")" = sfn-vad ] || fail "$d not owned by sfn-vad"
done
for u in sfn-edge.service sfn-edge@cam1.service; do
    out="$(systemd-analyze verify --man=no "$u" 2>&1)" || fail "installed $u: $out"
    if grep -q sfn-edge <<<"$out"; then fail "installed $u: $out"; fi
done
if [ -d "$clip" ]; then
    runuser -u sfn-vad -- sfn-edge check --config /etc/sfn-vad/edge.toml --set 'source.kind="folder"' --set "source.path=\"$clip\"" >/dev/null ||
        fail "sfn-edge check as sfn-vad on the installed config"
fi
# Upgrade (the same package again): an edited conffile is kept.
sed -i 's/^threshold = .*/threshold = 4.25/' /etc/sfn-vad/edge.toml
dpkg -i "$deb" >/dev/null || fail "dpkg -i (upgrade)"
grep -q '^threshold = 4.25' /etc/sfn-vad/edge.toml || fail "the upgrade replaced the edited /etc/sfn-vad/edge.toml"
dpkg --purge sfn-edge >/dev/null || fail "dpkg --purge"
for p in /etc/sfn-vad /var/lib/sfn-vad /var/cache/sfn-vad /usr/bin/sfn-edge; do
    [ ! -e "$p" ] || fail "$p left after purge"
done
say "install (user, groups, directories), check as sfn-vad, upgrade keeping the conffile, purge: ok"
