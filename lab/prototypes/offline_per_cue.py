# Analysis (docs/experiments.md, "Each cue min-maxed on its own offline"): from the box means written
# by `cargo run --release -p sfn-lab --example relative_error -- assets/ped2-cpu ../shared/data/ped2
# OUT.json`, the committed candidates (the network's box error over copying's plus the fitted floor,
# held two frames, z-scored on the training clips; fused with the speed cue's frame z by positive
# parts `p` or plain z-mean `z`, lambda 0.5 / 1 / 2, causal sigma 4/3 and 8/9) scored as eval does
# (offline: per-clip min-max of the fused error, centred Gaussian sigma 5), beside the same candidates
# whose offline score min-maxes each cue per clip before the weighted sum (the paper's order); the fold
# rule (best mean of offline and causal micro on one fold, first listed wins ties, reported on the
# other) over the committed candidates alone and over all; and the two-stage rule (docs/experiments.md,
# "The offline order chosen on offline figures alone"): the fold rule over the committed candidates,
# then, at that choice and on the same fold, the offline order by the offline micro AUC alone.
#   .venv/bin/python lab/prototypes/offline_per_cue.py OUT.json
import json, sys, numpy as np
from evalcopy import FOLDS, NAMES as names, mm, causal, centred, auc, boxes, choose, rule as fold_rule
D = json.load(open(sys.argv[1]))
cal = json.load(open('assets/ped2-cpu/calibration.json'))
fz = cal['speed']['frame_z']

net_tr, copy_tr = boxes(D, 'training', 0), boxes(D, 'training', 1)
net_te, copy_te = boxes(D, 'testing', 0), boxes(D, 'testing', 1)
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
def rule(cands): fold_rule(rows, cands)
print('fold rule, committed candidates (offline on the fused error):'); rule([k for k in cands if k.startswith('fused')])
print('fold rule, all candidates:'); rule(cands)

def two_stage(cands):
    """The fold rule over cands (offline on the fused error), then at each fold's choice the offline
    order (fused, or per cue) with the higher offline micro AUC on that fold (fused wins ties); the
    causal figure is the choice's own. Prints the three adoption conditions."""
    speed = rows['speed cue alone (sigma 1.33)']
    res, picks, beats = [], [], []
    for ch, rep in (('A', 'B'), ('B', 'A')):
        best = choose(rows, cands, ch)
        per = 'per cue' + best[len('fused'):]
        order = per if rows[per][ch][0] > rows[best][ch][0] else best
        (fused, cau), off = rows[best][rep], rows[order][rep][0]
        res.append((fused, off, cau)); picks.append(order == per); beats.append(off > speed[rep][0])
        print(f'  chosen on {ch}: {best}, offline order {order.split(":")[0]} -> on {rep}: {off:.2f} / {cau:.2f}'
              f' (fused order {fused:.2f}; speed cue alone offline {speed[rep][0]:.2f})')
    before, after, cau = (np.mean([r[i] for r in res]) for i in range(3))
    print(f'  cross-validated {after:.2f} / {cau:.2f} (fused order {before:.2f} / {cau:.2f})')
    print(f'  (1) per cue chosen on both folds: {all(picks)}; (2) offline +{after - before:.2f} >= 0.2: '
          f'{after - before >= 0.2}; (3) beats the speed cue alone offline on both held-out folds: {all(beats)}')
print('two-stage rule (fused-order fold rule, then the offline order on offline alone):')
two_stage([k for k in cands if k.startswith('fused')])
