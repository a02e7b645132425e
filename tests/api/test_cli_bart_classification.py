"""`bertstudio run classification` on a BartForSequenceClassification folder.

No reference checkpoint with a BART classification head is stored, so the
folder is built here from tests/fixtures/models/tiny-bart (its weights and
tokenizer, a pseudo-random classification_head, three labels) and the
engine's raw logits are compared with a float64 numpy re-implementation of
transformers' BartForSequenceClassification written for this test (the
decoder reads the input shifted right; the decoder state at the last eos goes
through dense -> tanh -> out_proj). That re-implementation was not checked
against transformers itself; the BART encoder-decoder it shares the recipe
with is (tests/fixtures/models/tiny-bart/README.md)."""
import json
import math
import os
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest

from conftest import BIN, FIXTURES, start_server

TINY = os.path.join(FIXTURES, "models", "tiny-bart")
LABELS = ["contradiction", "neutral", "entailment"]


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    return header, data


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The folder and its tensors as float64 arrays."""
    d = tmp_path_factory.mktemp("demo") / "tiny-bart-cls"  # its parent doubles as a demo folder
    d.mkdir()
    header, data = read_safetensors(os.path.join(TINY, "model.safetensors"))
    rng = np.random.default_rng(20251125)
    head = {
        "classification_head.dense.weight": rng.uniform(-0.3, 0.3, (32, 32)),
        "classification_head.dense.bias": rng.uniform(-0.1, 0.1, (32,)),
        "classification_head.out_proj.weight": rng.uniform(-0.5, 0.5, (3, 32)),
        "classification_head.out_proj.bias": rng.uniform(-0.1, 0.1, (3,)),
    }
    extra = b""
    for name, arr in head.items():
        b = arr.astype("<f4").tobytes()
        begin = len(data) + len(extra)
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [begin, begin + len(b)]}
        extra += b
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    with open(d / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data + extra)
    with open(os.path.join(TINY, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["architectures"] = ["BartForSequenceClassification"]
    cfg["id2label"] = {str(i): l for i, l in enumerate(LABELS)}
    cfg["label2id"] = {l: i for i, l in enumerate(LABELS)}
    del cfg["task_specific_params"]
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                 "merges.txt"):
        # Copies, not symlinks: an import refuses links that leave the folder.
        shutil.copy(os.path.join(TINY, name), d / name)
    weights = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        blob = (data + extra)[a:b]
        weights[name] = np.frombuffer(blob, dtype="<f4").astype(np.float64).reshape(meta["shape"])
    return str(d), weights, cfg


def run(model_dir, request):
    r = subprocess.run([BIN, "run", "classification", "--model", model_dir, "--threads", "1",
                        "--json", json.dumps(request)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def token_ids(model_dir, text, pair=None):
    cmd = [BIN, "tokenize", "--model", model_dir]
    if pair is not None:
        cmd += ["--pair", pair]
    r = subprocess.run(cmd + [text], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return out["input_ids"]


# ── numpy reference (float64) ──

def layer_norm(x, w, prefix):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w[prefix + ".weight"] + w[prefix + ".bias"]


def linear(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def attention(xq, xkv, w, prefix, heads, causal):
    hd = xq.shape[-1] // heads
    q = linear(xq, w, prefix + ".q_proj") * hd ** -0.5
    k, v = linear(xkv, w, prefix + ".k_proj"), linear(xkv, w, prefix + ".v_proj")
    out = np.zeros_like(q)
    for h in range(heads):
        s = slice(h * hd, (h + 1) * hd)
        scores = q[:, s] @ k[:, s].T
        if causal:
            scores = scores + np.triu(np.full(scores.shape, -np.inf), 1)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, s] = (p / p.sum(-1, keepdims=True)) @ v[:, s]
    return linear(out, w, prefix + ".out_proj")


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def reference_logits(w, cfg, ids):
    scale = math.sqrt(cfg["d_model"]) if cfg["scale_embedding"] else 1.0
    emb = w["model.shared.weight"]
    n = len(ids)
    x = emb[ids] * scale + w["model.encoder.embed_positions.weight"][2:2 + n]
    x = layer_norm(x, w, "model.encoder.layernorm_embedding")
    for i in range(cfg["encoder_layers"]):
        p = f"model.encoder.layers.{i}"
        x = layer_norm(x + attention(x, x, w, p + ".self_attn", cfg["encoder_attention_heads"], False),
                       w, p + ".self_attn_layer_norm")
        x = layer_norm(x + linear(gelu(linear(x, w, p + ".fc1")), w, p + ".fc2"), w, p + ".final_layer_norm")
    enc = x
    dec = [cfg["decoder_start_token_id"]] + list(ids[:-1])  # shift_tokens_right
    y = emb[dec] * scale + w["model.decoder.embed_positions.weight"][2:2 + n]
    y = layer_norm(y, w, "model.decoder.layernorm_embedding")
    for i in range(cfg["decoder_layers"]):
        p = f"model.decoder.layers.{i}"
        heads = cfg["decoder_attention_heads"]
        y = layer_norm(y + attention(y, y, w, p + ".self_attn", heads, True), w, p + ".self_attn_layer_norm")
        y = layer_norm(y + attention(y, enc, w, p + ".encoder_attn", heads, False), w,
                       p + ".encoder_attn_layer_norm")
        y = layer_norm(y + linear(gelu(linear(y, w, p + ".fc1")), w, p + ".fc2"), w, p + ".final_layer_norm")
    last_eos = max(i for i, t in enumerate(ids) if t == cfg["eos_token_id"])
    h = np.tanh(linear(y[last_eos], w, "classification_head.dense"))
    return linear(h, w, "classification_head.out_proj")


def raw_logits(result):
    by_label = {x["label"]: x["score"] for x in result}
    return np.array([by_label[l] for l in LABELS])


CASES = [("The cat sat on the mat.", None),
         ("A man is playing a guitar on stage.", "Someone is making music."),
         ("It rains.", "The streets are wet.")]


@pytest.mark.parametrize("text,pair", CASES)
def test_logits_match_the_numpy_reference(model, text, pair):
    d, w, cfg = model
    ids = token_ids(d, text, pair)
    if pair is None:
        assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 1
    else:  # <s> A </s></s> B </s>, as bart-large-mnli is used
        assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3
        k = ids.index(2)
        assert ids[k + 1] == 2
    req = {"text": text, "top_k": None, "function_to_apply": "none"}
    if pair is not None:
        req["text_pair"] = pair
    got = raw_logits(run(d, req)["results"][0])
    want = reference_logits(w, cfg, ids)
    assert np.max(np.abs(got - want)) < 1e-5, (got, want)


def test_labels_and_softmax_scores(model):
    d, _, _ = model
    raw = raw_logits(run(d, {"text": CASES[1][0], "text_pair": CASES[1][1], "top_k": None,
                             "function_to_apply": "none"})["results"][0])
    out = run(d, {"text": CASES[1][0], "text_pair": CASES[1][1], "top_k": None})
    res = out["results"][0]
    assert [x["label"] for x in res] == sorted(LABELS, key=lambda l: -raw[LABELS.index(l)])
    soft = np.exp(raw - raw.max())
    soft /= soft.sum()
    for x in res:
        assert abs(x["score"] - soft[LABELS.index(x["label"])]) < 1e-6
    top = run(d, {"text": CASES[1][0], "text_pair": CASES[1][1]})["results"][0]
    assert top == res[:1]  # top_k 1 by default


def test_pairs_batched_equal_alone(model):
    d, _, _ = model
    req = {"text": [c[0] for c in CASES[1:]], "text_pair": [c[1] for c in CASES[1:]], "top_k": None,
           "function_to_apply": "none"}
    batched = run(d, req)["results"]
    for i, (text, pair) in enumerate(CASES[1:]):
        alone = run(d, {"text": text, "text_pair": pair, "top_k": None, "function_to_apply": "none"})
        assert np.max(np.abs(raw_logits(batched[i]) - raw_logits(alone["results"][0]))) < 1e-5


def test_served_through_the_batcher(model):
    """The server registers the folder (task classification, from the
    architecture) and answers /tasks/classification like the CLI."""
    d, _, _ = model
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.dirname(d)})
    try:
        r = srv.get("/models/demo/tiny-bart-cls/info", headers=srv.auth())
        assert r.status_code == 200, r.text
        assert r.json()["data"]["task_type"] == "classification"
        body = {"text": [c[0] for c in CASES[1:]], "text_pair": [c[1] for c in CASES[1:]],
                "model_name": "demo/tiny-bart-cls", "top_k": None}
        end = time.monotonic() + 60
        while True:  # 503 + Retry-After while the model loads (the API's contract)
            r = srv.post("/tasks/classification", json=body, headers=srv.auth())
            if r.status_code != 503 or time.monotonic() > end:
                break
            time.sleep(float(r.headers.get("Retry-After", "1")) / 10)
        assert r.status_code == 200, r.text
        got = r.json()["data"]["results"]
        want = run(d, {k: v for k, v in body.items() if k != "model_name"})["results"]
        for g, w in zip(got, want):
            assert [x["label"] for x in g] == [x["label"] for x in w]
            assert max(abs(a["score"] - b["score"]) for a, b in zip(g, w)) < 1e-6
    finally:
        srv.stop()
