#!/usr/bin/python3
"""Derives the two models of the pipeline benchmark from bench/make-model.py's
BERT-base-shaped folder, each also as ONNX in the layout transformers.js
loads (onnx/model.onnx, int64 inputs):

  OUT/cls  BertForSequenceClassification (random 2-label head), ONNX output `logits`
  OUT/emb  BertModel + sentence-transformers files (mean pooling, Normalize),
           ONNX output `last_hidden_state`

The ONNX graphs are make-model.py's fused BERT graph with three Cast nodes in
front (transformers.js feeds int64; the fused kernels take int32) and, for
cls, the pooler and classifier appended. The extra nodes and value infos are
added by appending a second `graph` field to the ModelProto, which protobuf
merges into the first one.

usage: /usr/bin/python3 bench/pipeline/make-variants.py BASE_DIR OUT_DIR
"""
import importlib.util
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_model", os.path.join(HERE, "..", "make-model.py"))
mm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mm)
INT64 = 7
INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def onnx_with_int64_inputs(path, w, cfg, extra_nodes, extra_inits, outputs):
    """make-model.py's graph, fed through Casts from int64 inputs."""
    renamed = {name: name + "_i32" for name in INPUTS}
    orig_node, orig_vi = mm.node, mm.value_info

    def node(op, inputs, outs, name, domain="", attrs=()):
        if op == "EmbedLayerNormalization":
            inputs = [renamed.get(i, i) for i in inputs]
        return orig_node(op, inputs, outs, name, domain, attrs)

    def value_info(name, elem, dims):
        return orig_vi(name, INT64 if name in INPUTS else elem, dims)

    mm.node, mm.value_info = node, value_info
    try:
        mm.write_onnx(path, w, cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
                      cfg["layer_norm_eps"])
    finally:
        mm.node, mm.value_info = orig_node, orig_vi
    to = mm.f_bytes(1, "to") + mm.f_int(3, mm.INT32) + mm.f_int(20, 2)
    casts = [orig_node("Cast", [n], [renamed[n]], "cast_" + n, attrs=[to]) for n in INPUTS]
    graph = b"".join(mm.f_bytes(1, n) for n in casts + extra_nodes)
    graph += b"".join(mm.f_bytes(5, mm.tensor_proto(name, arr)) for name, arr in extra_inits)
    graph += b"".join(mm.f_bytes(12, orig_vi(name, mm.FLOAT, dims)) for name, dims in outputs)
    with open(path, "ab") as f:
        f.write(mm.f_bytes(7, graph))


def copy_tokenizer(base, out):
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(os.path.join(base, name), os.path.join(out, name))


def main():
    if len(sys.argv) != 3 or not os.path.isfile(os.path.join(sys.argv[1], "model.safetensors")):
        sys.exit("usage: /usr/bin/python3 bench/pipeline/make-variants.py BASE_DIR OUT_DIR\n(BASE_DIR: bench/make-model.py's output)")
    base, out = sys.argv[1], sys.argv[2]
    w = read_safetensors(os.path.join(base, "model.safetensors"))
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    H = cfg["hidden_size"]
    rng = np.random.default_rng(1)

    # classification: pooler(tanh(W h[CLS] + b)) -> classifier
    d = os.path.join(out, "cls")
    os.makedirs(os.path.join(d, "onnx"), exist_ok=True)
    wc = dict(w)
    wc["classifier.weight"] = (rng.standard_normal((2, H)) / np.sqrt(H)).astype(np.float32)
    wc["classifier.bias"] = np.zeros(2, dtype=np.float32)
    mm.write_safetensors(os.path.join(d, "model.safetensors"), wc)
    c = dict(cfg, architectures=["BertForSequenceClassification"], id2label={"0": "NEGATIVE", "1": "POSITIVE"},
             label2id={"NEGATIVE": 0, "POSITIVE": 1}, problem_type="single_label_classification")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    copy_tokenizer(base, d)
    idx = mm.f_int(2, INT64) + mm.f_bytes(8, "cls_idx") + mm.f_bytes(9, struct.pack("<q", 0))
    nodes = [
        mm.node("Gather", ["last_hidden_state", "cls_idx"], ["cls_h"], "cls_gather", attrs=[mm.attr_int("axis", 1)]),
        mm.node("Gemm", ["cls_h", "pool_w", "pool_b"], ["pool_lin"], "pooler", attrs=[mm.attr_int("transB", 1)]),
        mm.node("Tanh", ["pool_lin"], ["pooled"], "pool_tanh"),
        mm.node("Gemm", ["pooled", "clf_w", "clf_b"], ["logits"], "classifier", attrs=[mm.attr_int("transB", 1)]),
    ]
    inits = [("pool_w", w["bert.pooler.dense.weight"]), ("pool_b", w["bert.pooler.dense.bias"]),
             ("clf_w", wc["classifier.weight"]), ("clf_b", wc["classifier.bias"])]
    onnx_path = os.path.join(d, "onnx", "model.onnx")
    onnx_with_int64_inputs(onnx_path, w, cfg, nodes, inits, [("logits", ["batch", 2])])
    # the scalar int64 index of the Gather (tensor_proto only writes floats)
    with open(onnx_path, "ab") as f:
        f.write(mm.f_bytes(7, mm.f_bytes(5, idx)))

    # embeddings: the base model + sentence-transformers mean pooling and Normalize
    d = os.path.join(out, "emb")
    os.makedirs(os.path.join(d, "onnx"), exist_ok=True)
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    shutil.copy(os.path.join(base, "model.safetensors"), os.path.join(d, "model.safetensors"))
    shutil.copy(os.path.join(base, "config.json"), os.path.join(d, "config.json"))
    copy_tokenizer(base, d)
    with open(os.path.join(d, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=2)
    with open(os.path.join(d, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": H, "pooling_mode_mean_tokens": True}, f, indent=2)
    onnx_with_int64_inputs(os.path.join(d, "onnx", "model.onnx"), w, cfg, [], [], [])
    print("wrote", os.path.join(out, "cls"), "and", os.path.join(out, "emb"))


if __name__ == "__main__":
    main()
