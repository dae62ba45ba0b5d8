#!/usr/bin/env python3
"""What batching buys on ONNX Runtime's CPU provider (one intra-op thread): ms a frame of a batch of 8
against 8 batch-1 calls on the same deterministic inputs (the text mask 0), alternated over 20 rounds,
and whether the batch rows equal batch 1 bit for bit.

    .venv/bin/python scripts/ort-batch.py assets/ped2-cpu/onnx
"""
import onnxruntime as ort, numpy as np, time, sys
d = sys.argv[1]
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
for g in ['encoder', 'decoder']:
    s = ort.InferenceSession(f'{d}/{g}.onnx', so, providers=['CPUExecutionProvider'])
    def feed(b):
        out = {}
        for i in s.get_inputs():
            shp = [b if isinstance(x, str) or x is None else x for x in i.shape]
            v = (np.arange(np.prod(shp)) * 2654435761 % 1000 / 1000.0).astype(np.float32).reshape(shp)
            if i.name == 'text_mask': v[:] = 0
            out[i.name] = v
        return out
    f1, f8 = feed(1), feed(8)
    for _ in range(3): s.run(None, f1); s.run(None, f8)
    t1 = t8 = 0
    R = 20
    for _ in range(R):
        t = time.perf_counter()
        for _ in range(8): s.run(None, f1)
        t1 += time.perf_counter() - t
        t = time.perf_counter(); s.run(None, f8); t8 += time.perf_counter() - t
    a = s.run(None, f1)[0]; b = s.run(None, f8)[0]
    same = all(np.array_equal(b[k], a[0]) for k in range(8))
    print(f'{g}: batch-1 {1e3*t1/(8*R):.2f} ms a frame, batch-8 {1e3*t8/(8*R):.2f} ms a frame, ratio {t8/t1:.2f}x, rows bit-identical {same}')
