# Where ONNX Runtime spends a graph's time on one CPU thread: the share of each operator type and of the
# ten slowest nodes, after ORT's own graph optimisations (random inputs at batch 1, 60 runs).
#   .venv/bin/python scripts/ort-profile.py OUT/decoder.onnx [OUT/int8/decoder.onnx ...]
import collections, json, os, sys

import numpy as np
import onnxruntime as ort

for path in sys.argv[1:]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = "/tmp/ort-profile"
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: (rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]) * 0.3).astype(np.float32) for i in s.get_inputs()}
    for _ in range(60):
        s.run(None, feeds)
    trace = s.end_profiling()
    by_op, by_node = collections.Counter(), collections.Counter()
    for e in json.load(open(trace)):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            by_node[e["name"][: -len("_kernel_time")]] += e["dur"]
    os.remove(trace)
    total = sum(by_op.values())
    print(f"{path}: {total / 60 / 1000:.2f} ms a run in kernels")
    for k, v in by_op.most_common(8):
        print(f"  {k:28s} {100 * v / total:5.1f}%")
    print("  slowest nodes:")
    for k, v in by_node.most_common(10):
        print(f"    {k[:56]:56s} {100 * v / total:5.1f}%")
