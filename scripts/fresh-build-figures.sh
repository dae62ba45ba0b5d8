#!/usr/bin/env bash
# Fresh-clone build figures of the README's main job and the camera binary, for one or more commits,
# one after the other (each in a git worktree with an empty target dir, so nothing is shared):
# wall time and crates compiled for `cargo build --release -p sfn-host`, then stripped sizes of
# sfn-edge (default features and FEATURES) and sfn-host.
#   scripts/fresh-build-figures.sh [--features ort,v4l,semantic] REV [REV ...]
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
features=ort,v4l,semantic
if [ "${1:-}" = --features ]; then features=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [--features F] REV [REV ...]" >&2; exit 2; }
work=$(mktemp -d)
for rev in "$@"; do
    wt="$work/wt-$rev" tgt="$work/target-$rev" log="$work/build-$rev.log"
    git worktree add -q --detach "$wt" "$rev" || exit 1
    s=$(date +%s.%N)
    (cd "$wt" && CARGO_TARGET_DIR="$tgt" cargo build --release -p sfn-host) > "$log" 2>&1 || { echo "$rev: build failed, see $log"; continue; }
    e=$(date +%s.%N)
    echo "$rev: main-job build $(echo "$e - $s" | bc) s, $(grep -c '^   Compiling' "$log") crates compiled"
    size() { cp "$tgt/release/$1" "$work/bin" && strip "$work/bin" && stat -c %s "$work/bin"; }
    (cd "$wt" && CARGO_TARGET_DIR="$tgt" cargo build --release -p sfn-edge) >> "$log" 2>&1
    echo "$rev: stripped sfn-edge (default features) $(size sfn-edge) B, sfn-host $(size sfn-host) B"
    (cd "$wt" && CARGO_TARGET_DIR="$tgt" cargo build --release -p sfn-edge --features "$features") >> "$log" 2>&1 \
        && echo "$rev: stripped sfn-edge --features $features $(size sfn-edge) B"
    git worktree remove --force "$wt"; rm -rf "$tgt"
done
rm -rf "$work"
