# Analysis (docs/experiments.md, "Each cue min-maxed on its own offline"): from the box means written
# by `cargo run --release -p sfn-lab --example relative_error -- assets/ped2-cpu ../shared/data/ped2
# OUT.json`, the committed candidates (the network's box error over copying's plus the fitted floor,
# held two frames, z-scored on the training clips; fused with the speed cue's frame z by positive
# parts `p` or plain z-mean `z`, lambda 0.5 / 1 / 2, causal sigma 4/3 and 8/9) scored as eval does
# (offline: per-clip min-max of the fused error, centred Gaussian sigma 5), beside the same candidates
# whose offline score min-maxes each cue per clip before the weighted sum (the paper's order); the fold
# rule (best mean of offline and causal micro on one fold, first listed wins ties, reported on the
# other) over the committed candidates alone and over all.
#   .venv/bin/python lab/prototypes/offline_per_cue.py OUT.json
import json, os, sys, numpy as np
from sklearn.metrics import roc_auc_score
R = os.environ.get('SFN_DATA', '../shared/data') + '/ped2'
D = json.load(open(sys.argv[1]))
cal = json.load(open('assets/ped2-cpu/calibration.json'))
fz = cal['speed']['frame_z']
lab = json.load(open(f'{R}/testing/labels.json'))
FOLDS = {'A': ['01', '03', '05', '08'], 'B': ['04', '06', '09', '11']}
names = [c for f in FOLDS.values() for c in f]

def mm(x): return (x - x.min()) / (x.max() - x.min() + 1e-12)
def causal(x, sig):
    k = np.exp(-0.5 * (np.arange(0, int(3 * sig) + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(len(k) - 1, x[0]), x]), k, mode='valid')
def centred(x, sig=5.0):
    r = int(3 * sig); k = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(r, x[0]), x, np.full(r, x[-1])]), k, mode='valid')
def auc(streams, f):
    y = np.concatenate([np.array(lab[c])[4:] for c in FOLDS[f]])
    return 100 * roc_auc_score(y, np.concatenate([streams[c] for c in FOLDS[f]]))

def boxes(split, k):
    return {c: np.array([f[k] for f in fr]) for c, fr in D[split].items()}
net_tr, copy_tr = boxes('training', 0), boxes('training', 1)
net_te, copy_te = boxes('testing', 0), boxes('testing', 1)
c90 = float(np.percentile(np.concatenate([v.ravel() for v in copy_tr.values()]), 90))
def min2(v): return np.concatenate([v[:1], np.minimum(v[1:], v[:-1])])
ratio = lambda n, k: min2((n / (k + c90)).max(1))
tr = np.concatenate([ratio(net_tr[k], copy_tr[k]) for k in net_tr])
mu, sd = tr.mean(), tr.std()
ze = {c: (ratio(net_te[c], copy_te[c]) - mu) / sd for c in names}
zs = {c: (np.array(D['speed'][c]) - fz['speed'][0]) / fz['speed'][1] for c in names}
print(f'floor {c90:.6f}, ratio training mean / sd {mu:.4f} / {sd:.4f}')

def cues(fusion):
    if fusion == 'p':
        return {c: np.maximum(ze[c], 0) for c in names}, {c: np.maximum(zs[c], 0) for c in names}
    return ze, zs
rows, cands = {}, []
for sig in (4 / 3, 8 / 9):
    for nm, z in (('speed cue alone', zs), ('network alone', ze)):
        off = {c: centred(mm(z[c])) for c in names}
        cau = {c: causal(z[c], sig) for c in names}
        rows[f'{nm} (sigma {sig:.2f})'] = {f: (auc(off, f), auc(cau, f)) for f in FOLDS}
for sig in (4 / 3, 8 / 9):
    for offline in ('fused', 'per cue'):
        for fusion in ('p', 'z'):
            for lam in (1.0, 0.5, 2.0):
                e, s = cues(fusion)
                fused = {c: (e[c] + lam * s[c]) / (1 + lam) for c in names}
                if offline == 'fused':
                    off = {c: centred(mm(fused[c])) for c in names}
                else:
                    off = {c: centred((mm(e[c]) + lam * mm(s[c])) / (1 + lam)) for c in names}
                cau = {c: causal(fused[c], sig) for c in names}
                k = f'{offline}: {fusion}{lam} (sigma {sig:.2f})'
                rows[k] = {f: (auc(off, f), auc(cau, f)) for f in FOLDS}; cands.append(k)
for k, r in rows.items():
    print(f'{k:32s}', '  '.join(f'{f} {o:.2f} / {c:.2f}' for f, (o, c) in r.items()))
def rule(cands):
    res = []
    for ch, rep in (('A', 'B'), ('B', 'A')):
        best = max(cands, key=lambda k: sum(rows[k][ch]))  # max keeps the first of ties
        res.append(rows[best][rep])
        print(f'  chosen on {ch}: {best} -> on {rep}: {rows[best][rep][0]:.2f} / {rows[best][rep][1]:.2f}')
    print(f'  cross-validated {np.mean([r[0] for r in res]):.2f} / {np.mean([r[1] for r in res]):.2f}')
print('fold rule, committed candidates (offline on the fused error):'); rule([k for k in cands if k.startswith('fused')])
print('fold rule, all candidates:'); rule(cands)
