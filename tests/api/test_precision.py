"""The bf16 precision (`--precision bf16`, AVX512_BF16 only) and int8 (every
CPU) through the CLI and the server: the same labels and embeddings as f32
within their error, and clear refusals of unknown precisions. The bf16 tests
are skipped where the CPU lacks AVX512_BF16 (the f32 path is the rest of the
suite)."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import BIN, FIXTURES, start_server
from test_tasks import call

BF16 = "avx512_bf16" in open("/proc/cpuinfo").read()
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU lacks AVX512_BF16")


def run(task, model, request, *extra):
    p = subprocess.run([BIN, "run", task, "--model", os.path.join(FIXTURES, "models", model),
                        "--json", json.dumps(request), *extra],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("bad", ["fp8", "", "BF16 "])
def test_unknown_precision_is_a_usage_error(bad):
    rc, _, err = run("classification", "tiny-bert-classification", {"text": "a"}, "--precision", bad)
    assert rc == 2
    assert "--precision" in err and "f32, fp16, bf16 or int8" in err
    p = subprocess.run([BIN, "serve", "--precision", bad], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "f32, fp16, bf16 or int8" in p.stderr


@needs_bf16
@pytest.mark.parametrize("text", ["I love this movie", "a terrible, boring day", "hello world"])
def test_cli_bf16_classification_agrees_with_f32(text):
    req = {"text": text, "top_k": None}
    rc, f32, err = run("classification", "tiny-bert-classification", req)
    assert rc == 0, err
    rc, bf16, err = run("classification", "tiny-bert-classification", req, "--precision", "bf16")
    assert rc == 0, err
    a = {r["label"]: r["score"] for r in json.loads(f32)["results"][0]}
    b = {r["label"]: r["score"] for r in json.loads(bf16)["results"][0]}
    assert a.keys() == b.keys()
    assert max(abs(a[k] - b[k]) for k in a) < 0.02
    assert a != b  # the bf16 path did run: its rounding shows


@needs_bf16
def test_server_bf16_embeddings_agree_with_f32():
    texts = ["A man is eating food.", "The stock market fell sharply after the announcement.",
             "Two dogs are playing in the snow near the old bridge."]
    vecs = {}
    for prec in ("f32", "bf16"):
        srv = start_server(extra_args=("--precision", prec),
                           env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
        try:
            assert srv.get("/health").json()["data"]["precision"] == prec
            r = call(srv, "/tasks/embeddings", {"text": texts, "model_name": "demo/tiny-bert-embeddings"},
                     headers=srv.auth())
            assert r.status_code == 200, r.text
            vecs[prec] = np.array(r.json()["data"]["embeddings"], dtype=np.float64)
        finally:
            srv.stop()
    a, b = vecs["f32"], vecs["bf16"]
    assert a.shape == b.shape
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.999, cos
    assert np.abs(a - b).max() > 0  # not the f32 path under another name


@pytest.mark.parametrize("text", ["I love this movie", "a terrible, boring day", "hello world"])
def test_cli_int8_classification_agrees_with_f32(text):
    """int8 (dynamic quantization) runs on every CPU: same label, scores near f32's."""
    req = {"text": text, "top_k": None}
    rc, f32, err = run("classification", "tiny-bert-classification", req)
    assert rc == 0, err
    rc, i8, err = run("classification", "tiny-bert-classification", req, "--precision", "int8")
    assert rc == 0, err
    a = {r["label"]: r["score"] for r in json.loads(f32)["results"][0]}
    b = {r["label"]: r["score"] for r in json.loads(i8)["results"][0]}
    assert a.keys() == b.keys()
    assert max(a, key=a.get) == max(b, key=b.get)
    assert max(abs(a[k] - b[k]) for k in a) < 0.05
    assert a != b  # the quantized path did run


def test_server_int8_embeddings_agree_with_f32():
    texts = ["A man is eating food.", "Two dogs are playing in the snow near the old bridge."]
    vecs = {}
    for prec in ("f32", "int8"):
        srv = start_server(env={"BERTSTUDIO_PRECISION": prec,
                                "BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
        try:
            assert srv.get("/health").json()["data"]["precision"] == prec
            r = call(srv, "/tasks/embeddings", {"text": texts, "model_name": "demo/tiny-bert-embeddings"},
                     headers=srv.auth())
            assert r.status_code == 200, r.text
            vecs[prec] = np.array(r.json()["data"]["embeddings"], dtype=np.float64)
        finally:
            srv.stop()
    a, b = vecs["f32"], vecs["int8"]
    assert a.shape == b.shape
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.99, cos
    assert np.abs(a - b).max() > 0
