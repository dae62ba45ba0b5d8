# Prototype (docs/experiments.md, "A size-at-position cue from moving blobs"): size-at-position cue. Moving blobs (connected components of the thresholded frame
# difference at full resolution); normal footage gives, per image row band, the distribution of
# log blob area; a frame's score is the largest z of its blobs. Reported per fold, alone.
#   .venv/bin/python lab/prototypes/blob_size.py T   (T: the frame-difference threshold; 15, 25, 40, 60, 80 were run)
import json, os, sys, numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score
R = os.environ.get("SFN_DATA", "../shared/data") + "/ped2"
THR = int(sys.argv[1]) if len(sys.argv) > 1 else 25
def frames(split, clip):
    d = f'{R}/{split}/frames/{clip}'
    return [np.asarray(Image.open(f'{d}/{f}').convert('L'), dtype=np.int16) for f in sorted(os.listdir(d))]
st = np.ones((3, 3))
def blobs(fr):
    out = [[] for _ in fr]
    for t in range(1, len(fr)):
        m = np.abs(fr[t] - fr[t - 1]) > THR
        m = ndimage.binary_closing(m, structure=st, iterations=2)
        lab, n = ndimage.label(m)
        if n == 0: continue
        idx = np.arange(1, n + 1)
        area = ndimage.sum(m, lab, idx)
        sl = ndimage.find_objects(lab)
        for a, s in zip(area, sl):
            if a < 20: continue
            y0, y1 = s[0].start, s[0].stop; x0, x1 = s[1].start, s[1].stop
            out[t].append(((y0 + y1) / 2, y1 - y0, x1 - x0, a))
    return out
BANDS = 8
def band(y): return min(int(y / 240 * BANDS), BANDS - 1)
train = {}
for c in sorted(os.listdir(f'{R}/training/frames')):
    if c in ('15', '16'): continue
    train[c] = blobs(frames('training', c))
feats = {b: [] for b in range(BANDS)}
for c, bl in train.items():
    for fb in bl:
        for (y, h, w, a) in fb:
            feats[band(y)].append((np.log(a), np.log(h), np.log(w)))
stats = {}
for b, v in feats.items():
    v = np.array(v) if v else np.zeros((0, 3))
    stats[b] = (np.median(v, 0), np.percentile(v, 75, 0) - np.percentile(v, 25, 0) + 1e-3) if len(v) > 10 else (np.zeros(3), np.ones(3))
def score(bl):
    s = []
    for fb in bl:
        best = 0.0
        for (y, h, w, a) in fb:
            med, iqr = stats[band(y)]
            z = (np.array([np.log(a), np.log(h), np.log(w)]) - med) / iqr
            best = max(best, float(np.max(z)))
        s.append(best)
    return np.array(s)
labels = json.load(open(f'{R}/testing/labels.json'))
res = {}
for c in sorted(os.listdir(f'{R}/testing/frames')):
    sc = score(blobs(frames('testing', c)))[4:]
    res[c] = (sc, np.array(labels[c][4:]))
def smooth(x, s=5):
    k = np.exp(-0.5 * (np.arange(-3*s, 3*s+1) / s) ** 2); k /= k.sum()
    return np.convolve(np.pad(x, 3*s, mode='edge'), k, mode='valid')
for fold, clips in (('A', ['01', '03', '05', '08']), ('B', ['04', '06', '09', '11'])):
    off = np.concatenate([ (lambda z: (z - z.min()) / (z.max() - z.min() + 1e-9))(smooth(res[c][0])) for c in clips])
    raw = np.concatenate([res[c][0] for c in clips])
    lab = np.concatenate([res[c][1] for c in clips])
    print(fold, 'offline %.2f raw %.2f' % (100 * roc_auc_score(lab, off), 100 * roc_auc_score(lab, raw)))
