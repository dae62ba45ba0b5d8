# What the Python prototypes share: eval's offline and causal scoring (per-clip min-max, centred and
# one-sided Gaussians), the two dev folds, the labels, the box means of a `relative_error` dump, and the
# fold rule as the analyses below were decided with it (best mean of offline and causal micro on one
# fold, first listed wins ties, reported on the other; eval now keeps the model's own scoring unless that
# best beats it by one normal frame's weight: docs/experiments.md, "The model's own scoring unless
# clearly beaten"). Imported by the scripts beside it; run them from the repository root.
import json, os, numpy as np
from sklearn.metrics import roc_auc_score
R = os.environ.get('SFN_DATA', '../shared/data') + '/ped2'
FOLDS = {'A': ['01', '03', '05', '08'], 'B': ['04', '06', '09', '11']}
NAMES = [c for f in FOLDS.values() for c in f]
LABELS = json.load(open(f'{R}/testing/labels.json'))

def mm(x): return (x - x.min()) / (x.max() - x.min() + 1e-12)
def causal(x, sig):
    k = np.exp(-0.5 * (np.arange(0, int(3 * sig) + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(len(k) - 1, x[0]), x]), k, mode='valid')
def centred(x, sig=5.0):
    r = int(3 * sig); k = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2); k /= k.sum()
    return np.convolve(np.concatenate([np.full(r, x[0]), x, np.full(r, x[-1])]), k, mode='valid')
def auc(streams, f):
    """Micro AUC (percent) of per-clip streams over fold f (a clip's first four frames are not scored)."""
    y = np.concatenate([np.array(LABELS[c])[4:] for c in FOLDS[f]])
    return 100 * roc_auc_score(y, np.concatenate([streams[c] for c in FOLDS[f]]))
def score(stream, sig):
    """Offline and causal micro AUC on each fold of a per-clip frame stream, scored as eval does."""
    off = {c: centred(mm(stream[c])) for c in NAMES}
    cau = {c: causal(stream[c], sig) for c in NAMES}
    return {f: (auc(off, f), auc(cau, f)) for f in FOLDS}
def boxes(dump, split, k):
    """Plane k of a dump's box means (0: the network's weighted error, 1: copying's), per clip."""
    return {c: np.array([f[k] for f in fr]) for c, fr in dump[split].items()}
def choose(rows, cands, fold):
    """The fold rule's choice on one fold: the best mean of offline and causal micro, first of ties."""
    return max(cands, key=lambda k: sum(rows[k][fold]))  # max keeps the first of ties
def rule(rows, cands):
    """The fold rule over cands (keys of rows: {fold: (offline, causal)}); prints and returns the
    cross-validated (offline, causal)."""
    res = []
    for ch, rep in (('A', 'B'), ('B', 'A')):
        best = choose(rows, cands, ch)
        res.append(rows[best][rep])
        print(f'  chosen on {ch}: {best} -> on {rep}: {rows[best][rep][0]:.2f} / {rows[best][rep][1]:.2f}')
    cv = (np.mean([r[0] for r in res]), np.mean([r[1] for r in res]))
    print(f'  cross-validated {cv[0]:.2f} / {cv[1]:.2f}')
    return cv
