# One frame-head convolution of the committed Ped2 model's shape (16 -> 8 channels, 3x3, 128x192, then
# LeakyReLU) on ONNX Runtime, one thread: fp32 against a QDQ int8 form that ORT does fuse into
# QLinearConv (int8 activation and weights, int32 bias, a Q/DQ pair on the output). Prints the op types
# after ORT's optimisations and ms a run of each, interleaved (5 rounds of 50 runs, the median).
#   .venv/bin/python scripts/ort-int8-conv.py
import collections, statistics, tempfile, time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh

C, CO, H, W = 16, 8, 128, 192
rng = np.random.default_rng(0)
w = (rng.standard_normal((CO, C, 3, 3)) * 0.2).astype(np.float32)
b = (rng.standard_normal(CO) * 0.1).astype(np.float32)


def model(nodes, inits, out):
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [1, C, H, W])], [h.make_tensor_value_info(out, T.FLOAT, [1, CO, H, W])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def fp32():
    return model([h.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1] * 4), h.make_node("LeakyRelu", ["y"], ["z"], alpha=0.2)], [nh.from_array(w, "w"), nh.from_array(b, "b")], "z")


def int8():
    sw = (np.abs(w).reshape(CO, -1).max(1) / 127).astype(np.float32)
    sx, sy = np.float32(3 / 127), np.float32(2 / 127)
    inits = [
        nh.from_array(np.round(w / sw[:, None, None, None]).astype(np.int8), "wq"), nh.from_array(sw, "sw"), nh.from_array(np.zeros(CO, np.int8), "wz"),
        nh.from_array(np.array(sx, np.float32), "sx"), nh.from_array(np.array(0, np.int8), "xz"),
        nh.from_array(np.round(b / (sx * sw)).astype(np.int32), "bq"), nh.from_array((sx * sw).astype(np.float32), "bs"), nh.from_array(np.zeros(CO, np.int32), "bz"),
        nh.from_array(np.array(sy, np.float32), "sy"), nh.from_array(np.array(0, np.int8), "yz"),
    ]
    nodes = [
        h.make_node("QuantizeLinear", ["x", "sx", "xz"], ["xq"]), h.make_node("DequantizeLinear", ["xq", "sx", "xz"], ["xd"]),
        h.make_node("DequantizeLinear", ["wq", "sw", "wz"], ["wd"], axis=0), h.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
        h.make_node("Conv", ["xd", "wd", "bd"], ["y"], kernel_shape=[3, 3], pads=[1] * 4),
        h.make_node("QuantizeLinear", ["y", "sy", "yz"], ["yq"]), h.make_node("DequantizeLinear", ["yq", "sy", "yz"], ["yd"]),
        h.make_node("LeakyRelu", ["yd"], ["z"], alpha=0.2),
    ]
    return model(nodes, inits, "z")


x = {"x": rng.standard_normal((1, C, H, W)).astype(np.float32)}
sessions = {}
with tempfile.TemporaryDirectory() as d:
    for name, m in [("fp32", fp32()), ("int8", int8())]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.optimized_model_filepath = f"{d}/{name}.opt.onnx"
        s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        print(name, dict(collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)))
        for _ in range(5):
            s.run(None, x)
        sessions[name] = s
times = {k: [] for k in sessions}
for _ in range(5):
    for k, s in sessions.items():
        t = time.perf_counter()
        for _ in range(50):
            s.run(None, x)
        times[k].append((time.perf_counter() - t) / 50 * 1000)
f, q = statistics.median(times["fp32"]), statistics.median(times["int8"])
print(f"fp32 {f:.2f} ms, int8 {q:.2f} ms: int8 {f / q:.2f}x")
