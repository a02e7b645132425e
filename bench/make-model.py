#!/usr/bin/python3
"""Writes a random-weight BERT-base-shaped model folder for benchmarks:
model.safetensors + config.json + a WordPiece vocab.txt/tokenizer.json, and
model.onnx with the same weights for the ONNX Runtime peer (bench/peer-ort.mjs).

The ONNX graph is the one onnxruntime's transformer optimizer produces for
BERT (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu
from the com.microsoft domain), so ORT runs its best fused kernels. There is
no torch/onnx package here: the protobuf is encoded by hand below.

usage: /usr/bin/python3 bench/make-model.py OUT_DIR [--layers 12] [--hidden 768]
       [--heads 12] [--inter 3072] [--vocab 30522] [--max-pos 512] [--no-onnx]
       [--labels N] [--int8-onnx [--int8-weights per-channel|per-tensor]]

--labels N adds a sequence-classification head of N labels on the pooler
(BertForSequenceClassification; the encoder's weights are the same as
without it for the same --seed), for `bertstudio accuracy`'s argmax check.
The ONNX graphs then also output `logits` (pooler and classifier in f32).

--int8-onnx also writes model-int8.onnx, ONNX Runtime's own dynamic int8 for
bench/accuracy-ort.mjs: what onnxruntime.quantization.quantize_dynamic makes
of the encoder's dense layers, as ORT's graph optimizer fuses it
(DynamicQuantizeMatMul: activations to u8 per tensor at run time, weights
symmetric int8, per output channel or, --int8-weights per-tensor,
quantize_dynamic's default, one scale a matrix). Q, K and V are three such
layers feeding MultiHeadAttention; embeddings, LayerNorms, GELU, softmax and
the heads stay f32, as in `bertstudio --precision int8`. The activations'
scale spans the whole input tensor, padding included, so a sequence's
results depend on the batch it runs in.
"""
import argparse
import json
import os
import struct

import numpy as np


def write_safetensors(path, tensors):
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for n in names:
        nb = tensors[n].nbytes
        header[n] = {"dtype": "F32", "shape": list(tensors[n].shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            f.write(np.ascontiguousarray(tensors[n], dtype="<f4").tobytes())


# ── minimal protobuf encoder (wire types 0, 2 and 5) ──
def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_int(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_float(field, x):
    return varint(field << 3 | 5) + struct.pack("<f", x)


FLOAT, INT8, INT32, INT64 = 1, 3, 6, 7
ELEM = {np.dtype("<f4"): FLOAT, np.dtype("i1"): INT8, np.dtype("<i8"): INT64}


def tensor_proto(name, arr):
    out = b"".join(f_int(1, d) for d in arr.shape)
    return out + f_int(2, ELEM[arr.dtype]) + f_bytes(8, name) + f_bytes(9, arr.tobytes())


def attr_int(name, v):
    return f_bytes(1, name) + f_int(3, v) + f_int(20, 2)


def attr_float(name, v):
    return f_bytes(1, name) + f_float(2, v) + f_int(20, 1)


def node(op, inputs, outputs, name, domain="", attrs=()):
    out = b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
    out += f_bytes(3, name) + f_bytes(4, op)
    out += b"".join(f_bytes(5, a) for a in attrs)
    if domain:
        out += f_bytes(7, domain)
    return out


def value_info(name, elem, dims):
    shape = b"".join(f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_int(1, d)) for d in dims)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, f_int(1, elem) + f_bytes(2, shape)))


def quantize(wt, per_channel):
    """wt [in, out] as quantize_dynamic's symmetric int8 weights: scale
    max|w| / 127 per output column (or one for the matrix), codes w / scale
    rounded half to even within ±127."""
    scale = (np.abs(wt).max(axis=0) if per_channel else np.abs(wt).max()) / np.float32(127)
    return np.clip(np.rint(wt / scale), -127, 127).astype(np.int8), np.asarray(scale, np.float32)


def write_onnx(path, w, L, H, heads, eps, head=None, int8=None):
    """The f32 graph, or with int8 ("per-channel" or "per-tensor") ORT's dynamic int8 one."""
    MS = "com.microsoft"
    nodes, inits = [], []

    def init(name, arr):
        inits.append(f_bytes(5, tensor_proto(name, arr)))
        return name

    def dense(x, wt, wname, out, name, *bias):
        """x · wt [+ bias]; the int8 graph quantizes both sides."""
        if not int8:
            nodes.append(node("MatMul", [x, init(wname, wt)], [out], name))
            return
        q, scale = quantize(wt, int8 == "per-channel")
        nodes.append(node("DynamicQuantizeMatMul",
                          [x, init(wname, q), init(wname + "_scale", scale),
                           init(wname + "_zp", np.zeros(scale.shape, np.int8)), *bias],
                          [out], name, MS))

    p = "bert."
    nodes.append(node("EmbedLayerNormalization",
                      ["input_ids", "token_type_ids",
                       init("word", w[p + "embeddings.word_embeddings.weight"]),
                       init("pos", w[p + "embeddings.position_embeddings.weight"]),
                       init("seg", w[p + "embeddings.token_type_embeddings.weight"]),
                       init("emb_g", w[p + "embeddings.LayerNorm.weight"]),
                       init("emb_b", w[p + "embeddings.LayerNorm.bias"]),
                       "attention_mask"],
                      ["x0", "mask_index"], "emb", MS, [attr_float("epsilon", eps)]))
    x = "x0"
    for i in range(L):
        b = "%sencoder.layer.%d." % (p, i)
        t = "l%d_" % i
        if int8:
            # q, k and v as quantize_dynamic leaves an exported model's three MatMuls
            # (a weight scale each), then attention in f32: the fused Attention op
            # takes float weights only
            for n in ("query", "key", "value"):
                a = b + "attention.self." + n
                dense(x, w[a + ".weight"].T, t + n + "_w", t + n, t + n, init(t + n + "_b", w[a + ".bias"]))
            nodes.append(node("MultiHeadAttention", [t + "query", t + "key", t + "value", "", "attention_mask"],
                              [t + "att"], t + "attention", MS, [attr_int("num_heads", heads)]))
        else:
            qkv_w = np.concatenate([w[b + "attention.self.%s.weight" % n].T for n in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([w[b + "attention.self.%s.bias" % n] for n in ("query", "key", "value")])
            nodes.append(node("Attention", [x, init(t + "qkv_w", qkv_w), init(t + "qkv_b", qkv_b), "mask_index"],
                              [t + "att"], t + "attention", MS, [attr_int("num_heads", heads)]))
        dense(t + "att", w[b + "attention.output.dense.weight"].T, t + "o_w", t + "att_o", t + "att_out")
        nodes.append(node("SkipLayerNormalization",
                          [t + "att_o", x, init(t + "ln1_g", w[b + "attention.output.LayerNorm.weight"]),
                           init(t + "ln1_b", w[b + "attention.output.LayerNorm.bias"]),
                           init(t + "o_b", w[b + "attention.output.dense.bias"])],
                          [t + "x1"], t + "ln1", MS, [attr_float("epsilon", eps)]))
        dense(t + "x1", w[b + "intermediate.dense.weight"].T, t + "i_w", t + "ff1", t + "ff1_mm")
        nodes.append(node("BiasGelu", [t + "ff1", init(t + "i_b", w[b + "intermediate.dense.bias"])],
                          [t + "gelu"], t + "gelu", MS))
        dense(t + "gelu", w[b + "output.dense.weight"].T, t + "f_w", t + "ff2", t + "ff2_mm")
        out = "last_hidden_state" if i == L - 1 else t + "x2"
        nodes.append(node("SkipLayerNormalization",
                          [t + "ff2", t + "x1", init(t + "ln2_g", w[b + "output.LayerNorm.weight"]),
                           init(t + "ln2_b", w[b + "output.LayerNorm.bias"]),
                           init(t + "f_b", w[b + "output.dense.bias"])],
                          [out], t + "ln2", MS, [attr_float("epsilon", eps)]))
        x = out
    if head:
        # BertForSequenceClassification: tanh(pooler(first token)), then the classifier
        nodes.append(node("Gather", [x, init("first", np.array(0, np.int64))], ["cls"], "cls",
                          attrs=[attr_int("axis", 1)]))
        nodes.append(node("Gemm", ["cls", init("pool_w", w[p + "pooler.dense.weight"]),
                                   init("pool_b", w[p + "pooler.dense.bias"])],
                          ["pool_z"], "pooler", attrs=[attr_int("transB", 1)]))
        nodes.append(node("Tanh", ["pool_z"], ["pooled"], "pooler_tanh"))
        nodes.append(node("Gemm", ["pooled", init("cls_w", head["classifier.weight"]),
                                   init("cls_b", head["classifier.bias"])],
                          ["logits"], "classifier", attrs=[attr_int("transB", 1)]))
    # the int8 graph's name says its weights' granularity (bench/accuracy-ort.mjs reports it)
    graph = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, "bert-int8-" + int8 if int8 else "bert")
    graph += b"".join(inits)
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        graph += f_bytes(11, value_info(name, INT32, ["batch", "seq"]))
    graph += f_bytes(12, value_info("last_hidden_state", FLOAT, ["batch", "seq", H]))
    if head:
        graph += f_bytes(12, value_info("logits", FLOAT, ["batch", len(head["classifier.bias"])]))
    model = f_int(1, 8) + f_bytes(2, "bertstudio-bench") + f_bytes(7, graph)
    model += f_bytes(8, f_bytes(1, "") + f_int(2, 17)) + f_bytes(8, f_bytes(1, MS) + f_int(2, 1))
    with open(path, "wb") as f:
        f.write(model)


def make_vocab(n):
    special = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(0xC0, 0x180)]
    vocab = special + chars + ["##" + c for c in chars]
    letters = "abcdefghijklmnopqrstuvwxyz"
    rng = np.random.default_rng(7)
    seen = set(vocab)
    while len(vocab) < n:
        k = int(rng.integers(2, 9))
        word = "".join(letters[int(i)] for i in rng.integers(0, 26, size=k))
        if rng.random() < 0.3:
            word = "##" + word
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab[:n]


def tokenizer_json(vocab, max_len):
    ids = {t: i for i, t in enumerate(vocab)}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--inter", type=int, default=3072)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--labels", type=int, default=0)
    ap.add_argument("--int8-onnx", action="store_true")
    ap.add_argument("--int8-weights", choices=("per-channel", "per-tensor"), default="per-channel")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    H, I = a.hidden, a.inter

    def lin(o, i):
        return (rng.standard_normal((o, i), dtype=np.float32) * (1.0 / np.sqrt(i))).astype(np.float32)

    def vec(n, scale=0.02, mean=0.0):
        return (mean + rng.standard_normal(n, dtype=np.float32) * scale).astype(np.float32)

    w = {}
    p = "bert."
    w[p + "embeddings.word_embeddings.weight"] = rng.standard_normal((a.vocab, H), dtype=np.float32) * 0.5
    w[p + "embeddings.position_embeddings.weight"] = rng.standard_normal((a.max_pos, H), dtype=np.float32) * 0.5
    w[p + "embeddings.token_type_embeddings.weight"] = rng.standard_normal((2, H), dtype=np.float32) * 0.5
    w[p + "embeddings.LayerNorm.weight"] = vec(H, 0.1, 1.0)
    w[p + "embeddings.LayerNorm.bias"] = vec(H, 0.1)
    for i in range(a.layers):
        b = "%sencoder.layer.%d." % (p, i)
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[b + n + ".weight"] = lin(H, H)
            w[b + n + ".bias"] = vec(H)
        w[b + "intermediate.dense.weight"] = lin(I, H)
        w[b + "intermediate.dense.bias"] = vec(I)
        w[b + "output.dense.weight"] = lin(H, I)
        w[b + "output.dense.bias"] = vec(H)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[b + n + ".weight"] = vec(H, 0.1, 1.0)
            w[b + n + ".bias"] = vec(H, 0.1)
    w[p + "pooler.dense.weight"] = lin(H, H)
    w[p + "pooler.dense.bias"] = vec(H)
    head = {}
    if a.labels > 0:
        head["classifier.weight"] = lin(a.labels, H)
        head["classifier.bias"] = vec(a.labels)
    write_safetensors(os.path.join(a.out, "model.safetensors"), {**w, **head})
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": H, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "intermediate_size": I, "hidden_act": "gelu", "vocab_size": a.vocab,
        "max_position_embeddings": a.max_pos, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "torch_dtype": "float32",
    }
    if a.labels > 0:
        config["architectures"] = ["BertForSequenceClassification"]
        config["id2label"] = {str(i): "LABEL_%d" % i for i in range(a.labels)}
        config["label2id"] = {"LABEL_%d" % i: i for i in range(a.labels)}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    vocab = make_vocab(a.vocab)
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, a.max_pos), f, ensure_ascii=False)
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": a.max_pos}, f)
    if not a.no_onnx:
        write_onnx(os.path.join(a.out, "model.onnx"), w, a.layers, H, a.heads, 1e-12, head)
    if a.int8_onnx:
        write_onnx(os.path.join(a.out, "model-int8.onnx"), w, a.layers, H, a.heads, 1e-12, head, a.int8_weights)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
