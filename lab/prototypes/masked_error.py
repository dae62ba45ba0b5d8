# Analysis (docs/experiments.md, "The network's error weighted by how much the frame changed"): the box means written by
# `cargo run --release -p sfn-lab --example masked_error -- assets/ped2-cpu ../shared/data/ped2 OUT.json`,
# pooled as the box max, z-scored per frame on the training clips it lists (01-14), alone and in the
# committed z-mean fusion with the speed cue (the speed stream and FrameZ of the committed calibration,
# lambda 0.5 / 1 / 2), scored as eval does (causal: one-sided Gaussian sigma 3; offline: per-clip
# min-max, centred Gaussian sigma 5); the fold rule (best mean of offline and causal micro on one fold,
# reported on the other) over each family.
#   .venv/bin/python lab/prototypes/masked_error.py OUT.json SPEED_STREAMS.json
# SPEED_STREAMS.json: the pooling_folds cache (`POOLING_CACHE=FILE cargo run --release -p sfn-lab
# --example pooling_folds -- assets/ped2-cpu ../shared/data/ped2`), whose third part is the speed cue.
import json, os, sys, numpy as np
from sklearn.metrics import roc_auc_score
R = os.environ.get('SFN_DATA', '../shared/data') + '/ped2'
D = json.load(open(sys.argv[1]))
_, _, SP = json.load(open(sys.argv[2]))
cal = json.load(open('assets/ped2-cpu/calibration.json'))
fz = cal['speed']['frame_z']
lab = json.load(open(f'{R}/testing/labels.json'))
names = sorted(D['testing'])
FOLDS = {'A': ['01', '03', '05', '08'], 'B': ['04', '06', '09', '11']}
variants = D['variants']
def pooled(split, v):
    return {c: np.array([max(f[v]) for f in frames]) for c, frames in D[split].items()}
def mm(x): return (x - x.min()) / (x.max() - x.min() + 1e-12)
def causal(x, sig=3.0):
    k = np.exp(-0.5 * (np.arange(0, int(3 * sig) + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(len(k) - 1, x[0]), x]), k, mode='valid')
def centred(x, sig=5.0):
    r = int(3 * sig); k = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(r, x[0]), x, np.full(r, x[-1])]), k, mode='valid')
def score(stream):
    out = {}
    for f, cl in FOLDS.items():
        y = np.concatenate([np.array(lab[c])[4:] for c in cl])
        off = np.concatenate([centred(mm(stream[c])) for c in cl])
        cau = np.concatenate([causal(stream[c]) for c in cl])
        out[f] = (100 * roc_auc_score(y, off), 100 * roc_auc_score(y, cau))
    return out
zs = {c: (np.array(SP[i]) - fz['speed'][0]) / fz['speed'][1] for i, c in enumerate(names)}
fams = {}
rows = {'speed cue alone': score(zs)}
for v in range(len(variants)):
    tr = np.concatenate(list(pooled('training', v).values()))
    mu, sd = tr.mean(), tr.std()
    zp = {c: (s - mu) / sd for c, s in pooled('testing', v).items()}
    rows[f'{variants[v]} alone'] = score(zp)
    for lam in (0.5, 1.0, 2.0):
        k = f'{variants[v]} + {lam} x speed (z-mean)'
        rows[k] = score({c: (zp[c] + lam * zs[c]) / (1 + lam) for c in names})
        fams.setdefault(variants[v], []).append(k)
for k, r in rows.items():
    print(f'{k:45s}', '  '.join(f'{f} {o:.2f} / {c:.2f}' for f, (o, c) in r.items()))
print('fold rule over the three weights of each variant (chosen on one fold, reported on the other):')
for v, ks in fams.items():
    res = []
    for ch, rep in (('A', 'B'), ('B', 'A')):
        best = max(ks, key=lambda k: sum(rows[k][ch]))
        res.append(rows[best][rep])
    o = np.mean([r[0] for r in res]); c = np.mean([r[1] for r in res])
    print(f'{v:20s} cross-validated {o:.2f} / {c:.2f}')
