# Analysis (docs/experiments.md, "The network's error relative to copying's"): from the box means
# written by `cargo run --release -p sfn-lab --example relative_error -- assets/ped2-cpu
# ../shared/data/ped2 OUT.json`, the committed fusion (positive parts of the frame z-scores of the
# network's pooled error and of the speed cue; the plain z-mean beside it) against the same fusion with
# the network's box error divided by copying's box error plus c (c: the 50th and 90th percentile of
# copying's box error on the training clips), each at lambda 0.5 / 1 / 2 and causal sigma 2 / 1.33,
# scored as eval does (causal: one-sided Gaussian; offline: per-clip min-max, centred Gaussian sigma 5);
# the fold rule (best mean of offline and causal micro on one fold, first listed wins ties, reported on
# the other) over all candidates.
#   .venv/bin/python lab/prototypes/relative_error.py OUT.json
# With --min2 (docs/experiments.md, "Two frames of evidence for the ratio"): the ratio at c90 (the
# committed pooling) against min(e_t, e_t-1) of it, both fusions, lambda 0.5 / 1 / 2, causal sigma 4/3
# and 8/9 (the committed calibration's ladder).
import json, sys, numpy as np
from evalcopy import FOLDS, NAMES as names, score, boxes as dump_boxes, rule as fold_rule
D = json.load(open(sys.argv[1]))
cal = json.load(open('assets/ped2-cpu/calibration.json'))
fz = cal['speed']['frame_z']

def boxes(split, k): return dump_boxes(D, split, k)
net_tr, copy_tr = boxes('training', 0), boxes('training', 1)
net_te, copy_te = boxes('testing', 0), boxes('testing', 1)
all_copy = np.concatenate([v.ravel() for v in copy_tr.values()])
cs = {p: float(np.percentile(all_copy, p)) for p in (50, 90)}
print('c (copying box error percentiles on training):', cs)
zs = {c: (np.array(D['speed'][c]) - fz['speed'][0]) / fz['speed'][1] for c in names}

def zstream(tr, te):
    t = np.concatenate(list(tr.values())); mu, sd = t.mean(), t.std()
    return {c: (te[c] - mu) / sd for c in names}, (mu, sd)
streams = {}
z_net, st = zstream({c: v.max(1) for c, v in net_tr.items()}, {c: v.max(1) for c, v in net_te.items()})
print('network pooled, training mean / sd', st, 'calibration', fz['prediction'])
fams = {'committed (p)': z_net, 'committed (z-mean)': z_net}
for p, c in cs.items():
    f = lambda n, k: (n / (k + c)).max(1)
    z, _ = zstream({k: f(net_tr[k], copy_tr[k]) for k in net_tr}, {k: f(net_te[k], copy_te[k]) for k in names})
    fams[f'relative c{p}'] = z
rows = {}
for sig in (2.0, 1.33):
    rows[f'speed cue alone (sigma {sig})'] = score(zs, sig)
    rows[f'network alone (sigma {sig})'] = score(z_net, sig)
    for p in cs:
        rows[f'relative c{p} alone (sigma {sig})'] = score(fams[f'relative c{p}'], sig)
def fuse(z, lam, plain):
    # The plain z-mean of the network's and the speed cue's frame z, or the mean of their positive parts.
    if plain:
        return {c: (z[c] + lam * zs[c]) / (1 + lam) for c in names}
    return {c: (np.maximum(z[c], 0) + lam * np.maximum(zs[c], 0)) / (1 + lam) for c in names}
cands = []
for sig in (2.0, 1.33):
    for fam, z in fams.items():
        for lam in (1.0, 0.5, 2.0):
            k = f'{fam} lambda {lam} (sigma {sig})'
            rows[k] = score(fuse(z, lam, fam.endswith('(z-mean)')), sig); cands.append(k)
for k, r in rows.items():
    print(f'{k:45s}', '  '.join(f'{f} {o:.2f} / {c:.2f}' for f, (o, c) in r.items()))
def rule(cands): fold_rule(rows, cands)
if '--min2' not in sys.argv:
    print('fold rule, committed families only:'); rule([k for k in cands if k.startswith('committed')])
    print('fold rule, all candidates:'); rule(cands)
    sys.exit(0)

def min2(v):
    return np.concatenate([v[:1], np.minimum(v[1:], v[:-1])])
c90 = cs[90]
ratio = lambda n, k: (n / (k + c90)).max(1)
tr = {k: ratio(net_tr[k], copy_tr[k]) for k in net_tr}
te = {k: ratio(net_te[k], copy_te[k]) for k in names}
fams = {'relative': zstream(tr, te)[0], 'relative min2': zstream({k: min2(v) for k, v in tr.items()}, {k: min2(v) for k, v in te.items()})[0]}
rows, cands = {}, []
for sig in (4 / 3, 8 / 9):
    rows[f'speed cue alone (sigma {sig:.2f})'] = score(zs, sig)
    for fam, z in fams.items():
        rows[f'{fam} alone (sigma {sig:.2f})'] = score(z, sig)
for sig in (4 / 3, 8 / 9):
    for fam, z in fams.items():
        for fusion in ('p', 'z'):
            for lam in (1.0, 0.5, 2.0):
                k = f'{fam} {fusion}{lam} (sigma {sig:.2f})'
                rows[k] = score(fuse(z, lam, fusion == 'z'), sig); cands.append(k)
for k, r in rows.items():
    print(f'{k:45s}', '  '.join(f'{f} {o:.2f} / {c:.2f}' for f, (o, c) in r.items()))
print('fold rule, committed families only:'); rule([k for k in cands if not k.startswith('relative min2')])
print('fold rule, all candidates:'); rule(cands)
