"""The benchmarks' model generators at a tiny shape: bench/make-model.py
(plain, with a classifier head, with ONNX Runtime's int8 graph),
bench/pipeline/make-variants.py and bench/serve/make-heads.py, which import
make-model.py's writers. Each folder they write must load in the real binary
and answer its task; a change to one script's functions that another still
calls the old way fails here, not in the middle of a benchmark run."""
import json
import os
import subprocess
import sys

import pytest

from conftest import BIN

ROOT = os.environ.get("BS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = ["--layers", "2", "--hidden", "64", "--heads", "2", "--inter", "128", "--vocab", "500",
        "--max-pos", "64"]


def script(*args):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def run_task(task, model, request):
    p = subprocess.run([BIN, "run", task, "--model", model, "--threads", "1", "--json",
                        json.dumps(request)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("bench-models") / "base")
    script(os.path.join(ROOT, "bench", "make-model.py"), d, *TINY)
    return d


def test_make_model_writes_a_loadable_bert_and_its_onnx(base):
    assert os.path.getsize(os.path.join(base, "model.onnx")) > 0
    p = subprocess.run([BIN, "bench", "--model", base, "--seq", "8", "--iters", "1", "--threads",
                        "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["tokens"] == 8 and r["precision"] == "f32"


def test_make_model_with_labels_and_int8_onnx(tmp_path):
    d = str(tmp_path / "cls")
    script(os.path.join(ROOT, "bench", "make-model.py"), d, *TINY, "--labels", "3", "--int8-onnx")
    assert os.path.getsize(os.path.join(d, "model-int8.onnx")) > 0
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert len(cfg["id2label"]) == 3
    (top,), = run_task("classification", d, {"text": "a b c"})["results"]
    assert top["label"] in cfg["id2label"].values() and 1 / 3 <= top["score"] <= 1


def test_variants_and_heads_from_the_base(base, tmp_path):
    out = str(tmp_path)
    script(os.path.join(ROOT, "bench", "pipeline", "make-variants.py"), base, out)
    script(os.path.join(ROOT, "bench", "serve", "make-heads.py"), base, out)
    for name in ("emb", "cls"):
        assert os.path.getsize(os.path.join(out, name, "onnx", "model.onnx")) > 0
    (vec,) = run_task("embeddings", os.path.join(out, "emb"), {"text": "a b c"})["embeddings"]
    assert len(vec) == 64
    (top,), = run_task("classification", os.path.join(out, "cls"), {"text": "a b c"})["results"]
    assert 0.5 <= top["score"] <= 1  # two labels
    (ents,) = run_task("ner", os.path.join(out, "ner"), {"text": "a b c"})["results"]
    assert all("a b c"[e["start"]:e["end"]] == e["word"] for e in ents)
    (ans,) = run_task("qa", os.path.join(out, "qa"), {"question": "a b", "context": "c d e"})["results"]
    assert "c d e"[ans["start"]:ans["end"]] == ans["answer"]
