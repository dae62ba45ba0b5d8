"""Independent reference for sfn-text: all-MiniLM-L6-v2 written out in numpy (BERT encoder, mean pooling
with the attention mask, L2 normalisation), weights read with `safetensors`, tokens from the model's
tokenizer.json via the `tokenizers` package. Prints one JSON list of embeddings for the sentences in argv."""
import json, math, sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

model_dir, sentences = sys.argv[1], sys.argv[2:]
cfg = json.load(open(f"{model_dir}/config.json"))
w = load_file(f"{model_dir}/model.safetensors")
p = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)
H, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
dh = H // heads


def ln(x, name):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w[name + ".weight"] + w[name + ".bias"]


def lin(x, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


erf = np.vectorize(math.erf)
out = []
for s in sentences:
    e = tok.encode(s)
    ids = np.array(e.ids)
    x = w[p + "embeddings.word_embeddings.weight"][ids] + w[p + "embeddings.position_embeddings.weight"][: len(ids)] + w[p + "embeddings.token_type_embeddings.weight"][np.array(e.type_ids)]
    x = ln(x.astype(np.float64), p + "embeddings.LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        L = f"{p}encoder.layer.{i}."
        q = lin(x, L + "attention.self.query").reshape(-1, heads, dh).transpose(1, 0, 2)
        k = lin(x, L + "attention.self.key").reshape(-1, heads, dh).transpose(1, 0, 2)
        v = lin(x, L + "attention.self.value").reshape(-1, heads, dh).transpose(1, 0, 2)
        a = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(-1, H)
        x = ln(lin(ctx, L + "attention.output.dense") + x, L + "attention.output.LayerNorm")
        h = lin(x, L + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(lin(h, L + "output.dense") + x, L + "output.LayerNorm")
    m = x.mean(0)  # one sentence, no padding: every token counts
    out.append((m / np.linalg.norm(m)).tolist())
print(json.dumps(out))
