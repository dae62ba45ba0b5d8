# Prototype (docs/experiments.md, "Object-centric motion and appearance memory"): boxes of a person's
# height at their row (fitted on moving blobs of training clips 01-14) wherever at least MINFRAC of the box
# moves; each box described by its appearance (the crop, standardised) and/or its two last frame
# differences, PxP each; PCA-64 and a memory of 30k normal boxes (clips 01-14); a box scores its mean
# distance to its 3 nearest normal boxes, a frame its largest box, z-scored on held-out clips 15-16.
# Reported per fold alone and added to the committed model's fused stream (a Python copy of its scoring).
#   FEAT=am|m SCALE=1 .venv/bin/python lab/prototypes/object_knn.py THR P STRIDE MINFRAC   (20 12 12 0.1 were run)
import json, os, sys, numpy as np, time
from PIL import Image
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from scipy.ndimage import gaussian_filter1d
R=os.environ.get('SFN_DATA','../shared/data')+'/ped2'
def _load(key):
    d=f'{R}/{key.replace("/","/frames/")}'
    return np.stack([np.asarray(Image.open(f'{d}/{f}').convert('L')) for f in sorted(os.listdir(d))])
class _Frames(dict):
    def __missing__(self,k):
        v=self[k]=_load(k); return v
F=_Frames()
THR=int(sys.argv[1]) if len(sys.argv)>1 else 20
P=int(sys.argv[2]) if len(sys.argv)>2 else 12   # patch side after resize
STRIDE=int(sys.argv[3]) if len(sys.argv)>3 else 12
MINFRAC=float(sys.argv[4]) if len(sys.argv)>4 else 0.10
import os
FEAT=os.environ.get('FEAT','am'); SCALE=float(os.environ.get('SCALE','1'))
# person height at row y: fitted from moving blobs of training clips (median height per band, linear fit)
def person_height(clips):
    ys,hs=[],[]
    for c in clips:
        fr=F['training/'+c].astype(np.int16)
        for t in range(1,len(fr),3):
            m=ndimage.binary_closing(np.abs(fr[t]-fr[t-1])>THR,iterations=2)
            lab,n=ndimage.label(m)
            for s in ndimage.find_objects(lab):
                h=s[0].stop-s[0].start; w=s[1].stop-s[1].start
                if h*w<60 or w>h*1.2: continue   # single upright walkers mostly
                ys.append((s[0].start+s[0].stop)/2); hs.append(h)
    ys,hs=np.array(ys),np.array(hs)
    a,b=np.polyfit(ys,hs,1)
    return lambda y: max(16.0,a*y+b), (a,b,len(ys))
train_clips=[f'{i:02d}' for i in range(1,15)]
ph,info=person_height(train_clips)
print('height fit',info)
def resize(img,P):
    # area resize to PxP
    h,w=img.shape
    ys=(np.arange(P+1)*h/P).astype(int); xs=(np.arange(P+1)*w/P).astype(int)
    c=np.cumsum(np.cumsum(np.pad(img,((1,0),(1,0))),0),1)
    s=c[ys[1:]][:,xs[1:]]-c[ys[:-1]][:,xs[1:]]-c[ys[1:]][:,xs[:-1]]+c[ys[:-1]][:,xs[:-1]]
    area=np.outer(np.diff(ys),np.diff(xs))
    return s/area
def clip_boxes(key):
    fr=F[key].astype(np.float32)
    H,W=fr.shape[1:]
    out=[[] for _ in fr]
    for t in range(2,len(fr)):
        d1=fr[t]-fr[t-1]; d2=fr[t-1]-fr[t-2]
        m=(np.abs(d1)>THR).astype(np.float32)
        cm=np.cumsum(np.cumsum(np.pad(m,((1,0),(1,0))),0),1)
        for cy in range(8,H-8,STRIDE):
            s=int(SCALE*ph(cy)); h2=s//2
            y0=max(0,cy-h2); y1=min(H,cy+h2)
            for cx in range(h2 if h2<W//2 else 0, W-h2+1 if h2<W//2 else W, STRIDE):
                x0=max(0,cx-h2); x1=min(W,cx+h2)
                frac=(cm[y1,x1]-cm[y0,x1]-cm[y1,x0]+cm[y0,x0])/((y1-y0)*(x1-x0))
                if frac<MINFRAC: continue
                a=fr[t,y0:y1,x0:x1]; a=(a-a.mean())/(a.std()+8)
                parts=[]
                if 'a' in FEAT: parts.append(resize(a,P).ravel())
                if 'm' in FEAT: parts+= [resize(d1[y0:y1,x0:x1],P).ravel()/32, resize(d2[y0:y1,x0:x1],P).ravel()/32]
                if 'g' in FEAT: parts.append(np.abs(resize(d1[y0:y1,x0:x1],P)).ravel()/32)
                parts.append([cy/H])
                f=np.concatenate(parts)
                out[t].append(f)
    return out
t0=time.time()
trainb={c:clip_boxes('training/'+c) for c in [f'{i:02d}' for i in range(1,17)]}
print('train boxes', sum(len(b) for v in trainb.values() for b in v), time.time()-t0)
X=np.array([f for c in train_clips for b in trainb[c] for f in b],dtype=np.float32)
rng=np.random.default_rng(0)
pca=PCA(64,random_state=0).fit(X[rng.choice(len(X),min(len(X),20000),replace=False)])
bank=pca.transform(X[rng.choice(len(X),min(len(X),30000),replace=False)]).astype(np.float32)
bn=(bank**2).sum(1)
def knn(q,k=3):
    q=pca.transform(np.array(q,dtype=np.float32)).astype(np.float32)
    d=(q**2).sum(1)[:,None]+bn[None]-2*q@bank.T
    return np.sqrt(np.maximum(np.sort(d,1)[:,:k],0)).mean(1)
def frame_scores(boxes):
    s=np.zeros(len(boxes))
    for t,b in enumerate(boxes):
        if b: s[t]=knn(b).max()
    return s
ho=np.concatenate([frame_scores(trainb[c])[4:] for c in ('15','16')])
mu,sd=ho.mean(),ho.std()
lab=json.load(open(f'{R}/testing/labels.json'))
names=['01','03','04','05','06','08','09','11']
app={}
for n in names:
    app[n]=(frame_scores(clip_boxes('testing/'+n))[4:]-mu)/sd
print('time',time.time()-t0)
ev=json.load(open('assets/ped2-cpu/eval.json'))
cal=ev['calibration']
def mm(x): return (x-x.min())/(x.max()-x.min()+1e-12)
def causal(x,sig=3.0):
    k=np.exp(-0.5*(np.arange(0,int(3*sig)+1)/sig)**2); k/=k.sum()
    return np.array([sum(k[j]*x[max(i-j,0)] for j in range(len(k))) for i in range(len(x))])
folds={'A':['01','03','05','08'],'B':['04','06','09','11']}
def report(streams,tag):
    r={}
    for f,cl in folds.items():
        y=np.concatenate([np.array(lab[c])[4:] for c in cl])
        off=np.concatenate([gaussian_filter1d(mm(streams[c]),5,mode='nearest') for c in cl])
        cau=np.concatenate([causal(streams[c]) for c in cl])
        r[f]=(100*roc_auc_score(y,off),100*roc_auc_score(y,cau))
    print(tag, ' '.join(f'{f} {o:.2f}/{c:.2f}' for f,(o,c) in r.items()))
    return r
base={n:(np.array(ev['visual_error'][n])-cal['visual_mean'])/cal['visual_std'] for n in names}
report(base,'committed (py copy)')
report(app,'appearance alone')
for w in (0.25,0.5,1.0):
    report({n:(base[n]+w*app[n]) for n in names}, f'committed + {w} app')
