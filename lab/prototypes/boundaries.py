# Analysis (docs/experiments.md, "Where the committed scoring still errs: label boundaries"): from the
# committed model's eval.json (its per-frame fused stream and its causal and offline scores), the fold
# AUCs with the frames near a label change left out (diagnostic only, never a reported figure), and the
# causal AUC for one-sided Gaussian sigmas 0..4 and a score read 0..6 frames later (what the lag costs).
#   .venv/bin/python lab/prototypes/boundaries.py [MODEL_DIR]
import json, os, sys, numpy as np
from sklearn.metrics import roc_auc_score
R = os.environ.get('SFN_DATA', '../shared/data') + '/ped2'
M = sys.argv[1] if len(sys.argv) > 1 else 'assets/ped2-cpu'
ev = json.load(open(f'{M}/eval.json'))
lab = json.load(open(f'{R}/testing/labels.json'))
cal = ev['calibration']
FOLDS = {'A': ['01', '03', '05', '08'], 'B': ['04', '06', '09', '11']}

def to_boundary(y):
    b = np.flatnonzero(np.diff(y)) + 0.5
    i = np.arange(len(y))
    return np.min(np.abs(i[:, None] - b[None]), 1) if len(b) else np.full(len(y), 1e9)

print('AUC (micro) with the frames within N frames of a label change left out')
for f, clips in FOLDS.items():
    for kind in ('causal', 'offline'):
        S, Y, D = [], [], []
        for c in clips:
            s = (ev['causal'] if kind == 'causal' else ev)['per_clip'][c]['scores']
            y = np.array(lab[c])
            S += list(s); Y += list(y[4:]); D += list(to_boundary(y)[4:])
        S, Y, D = map(np.array, (S, Y, D))
        row = [f'all {100 * roc_auc_score(Y, S):.2f}']
        for n in (10, 20):
            k = D > n
            row.append(f'>{n}: {100 * roc_auc_score(Y[k], S[k]):.2f} ({(~k).sum()} frames out)')
        print(f, kind, ', '.join(row))

def causal(x, sig):
    if sig <= 0:
        return x.copy()
    k = np.exp(-0.5 * (np.arange(0, int(3 * sig) + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(len(k) - 1, x[0]), x]), k, mode='valid')

z = {c: (np.array(ev['visual_error'][c]) - cal['visual_mean']) / cal['visual_std'] for cl in FOLDS.values() for c in cl}
print('causal micro AUC by one-sided sigma (rows) and by the score read k frames later (columns 0 1 2 3 4 6)')
for f, clips in FOLDS.items():
    for sig in (0, 1, 2, 3, 4):
        row = []
        for k in (0, 1, 2, 3, 4, 6):
            S, Y = [], []
            for c in clips:
                s = causal(z[c], sig)
                S += list(np.concatenate([s[k:], np.full(k, s[-1])])); Y += list(np.array(lab[c])[4:])
            row.append(f'{100 * roc_auc_score(Y, S):.2f}')
        print(f, 'sigma', sig, ' '.join(row))
