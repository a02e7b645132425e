"""Task endpoints against the real binary: every case of
tests/fixtures/pipelines/*.jsonl through POST /tasks/<task> on the demo
models (demo/<fixture folder>), /tokenize, bad input (404 with a hint, 422
for a missing head, 400 naming the field) and the execution logs."""
import json
import os
import time

import pytest

from conftest import FIXTURES, start_demo_server

TASK_FILES = {
    "classification": "classification.jsonl",
    "ner": "ner.jsonl",
    "qa": "qa.jsonl",
    "fill-mask": "fill-mask.jsonl",
    "embeddings": "embeddings.jsonl",
    "features": "features.jsonl",
    "summarization": "summarization.jsonl",
}


def load_cases():
    cases = []
    for task, name in TASK_FILES.items():
        with open(os.path.join(FIXTURES, "pipelines", name), encoding="utf-8") as f:
            for line in f:
                c = json.loads(line)
                model = c.get("model") or "tiny-bart"
                body = dict(c["request"])
                body["model_name"] = "demo/" + model
                cases.append(pytest.param(task, body, c["expected"], id=f"{task}:{c['id']}"))
    return cases


CASES = load_cases()


@pytest.fixture(scope="module")
def tsrv():
    srv = start_demo_server("tasks-tests")
    yield srv
    srv.stop()


def call(srv, path, body, headers=None, deadline_s=60):
    """POST, honouring 503 + Retry-After while a model loads (the API's contract)."""
    end = time.monotonic() + deadline_s
    while True:
        r = srv.post(path, json=body, headers=headers or srv.hdr)
        if r.status_code != 503 or time.monotonic() > end:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")) / 10)


def close(got, want, path="data", tol=1e-4):
    """Exact for strings, ints, bools, nesting; floats within tol. Only the
    keys of `want` are compared (as the fixtures README says)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: expected an object, got {got!r}"
        for k, v in want.items():
            assert k in got, f"{path}.{k} missing"
            close(got[k], v, f"{path}.{k}", tol)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), \
            f"{path}: expected {len(want)} items, got {got!r}"[:400]
        for i, (g, w) in enumerate(zip(got, want)):
            close(g, w, f"{path}[{i}]", tol)
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)) and abs(got - want) <= tol, f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


@pytest.mark.parametrize("task,body,expected", CASES)
def test_fixture_case(tsrv, task, body, expected):
    r = call(tsrv, "/tasks/" + task, body)
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["success"] is True
    if task == "summarization":
        expected = {"results": expected["results"]}
    close(env["data"], expected)


def ner_none_cases():
    out = []
    with open(os.path.join(FIXTURES, "pipelines", "ner.jsonl"), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            r = c["request"]
            if r.get("aggregation_strategy") == "none" and isinstance(r["text"], str):
                out.append(pytest.param(c, id=c["id"]))
    return out


@pytest.mark.parametrize("case", ner_none_cases())
def test_tokenize_agrees_with_ner_tokens(tsrv, case):
    """The NER fixtures (aggregation none) give each token's position, raw
    vocabulary string and character span: /tokenize must show the same."""
    text = case["request"]["text"]
    r = call(tsrv, "/tokenize", {"text": text, "model_name": "demo/" + case["model"]})
    assert r.status_code == 200, r.text
    enc = r.json()["data"]["results"][0]
    n = len(enc["input_ids"])
    assert n == len(enc["tokens"]) == len(enc["offsets"]) == len(enc["attention_mask"])
    assert enc["attention_mask"] == [1] * n and enc["token_type_ids"] == [0] * n
    assert enc["tokens"][0] == "[CLS]" and enc["tokens"][-1] == "[SEP]"
    assert case["expected"]["results"][0], "fixture without entities"
    for ent in case["expected"]["results"][0]:
        i = ent["index"]
        assert enc["offsets"][i] == [ent["start"], ent["end"]]
        if enc["tokens"][i] != "[UNK]":
            assert enc["tokens"][i] == ent["word"]
        else:
            assert text[ent["start"]:ent["end"]] == ent["word"]


def test_tokenize_pairs_truncation_and_lists(tsrv):
    m = "demo/tiny-bert-classification"
    full = call(tsrv, "/tokenize", {"text": "the quick brown fox jumps over the lazy dog", "model_name": m})
    ids = full.json()["data"]["results"][0]["input_ids"]
    r = call(tsrv, "/tokenize", {"text": "the quick brown fox jumps over the lazy dog",
                                 "model_name": m, "max_length": 6, "stride": 2})
    assert r.status_code == 200, r.text
    enc = r.json()["data"]["results"][0]
    assert len(enc["input_ids"]) == 6
    assert enc["input_ids"][:5] == ids[:5] and enc["input_ids"][5] == ids[-1]
    assert enc["overflowing"], "the rest of the text comes back as windows"
    # stride 2: each window starts with the last 2 content tokens of the previous one
    assert enc["overflowing"][0]["input_ids"][1:3] == enc["input_ids"][3:5]
    r = call(tsrv, "/tokenize", {"text": ["a b", "c"], "text_pair": ["x", "y z"], "model_name": m})
    assert r.status_code == 200, r.text
    res = r.json()["data"]["results"]
    assert len(res) == 2
    assert 1 in res[0]["token_type_ids"] and res[0]["tokens"].count("[SEP]") == 2
    r = call(tsrv, "/tokenize", {"text": ["a"], "text_pair": ["x", "y"], "model_name": m})
    assert r.status_code == 400 and "text_pair" in r.json()["detail"]


def test_unknown_model_is_404_with_hint(tsrv):
    r = call(tsrv, "/tasks/classification", {"text": "hi", "model_name": "nobody/no-such-model"})
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["success"] is False and body["status_code"] == 404
    assert "nobody/no-such-model" in body["detail"] and "/models/download" in body["detail"]


@pytest.mark.parametrize("task,body,head", [
    ("classification", {"text": "hi", "model_name": "demo/tiny-bert-ner"}, "sequence-classification"),
    ("ner", {"text": "hi", "model_name": "demo/tiny-bert-classification"}, "token-classification"),
    ("qa", {"question": "a?", "context": "b", "model_name": "demo/tiny-bert-mlm"}, "question-answering"),
    ("fill-mask", {"text": "a [MASK]", "model_name": "demo/tiny-bert-qa"}, "masked-language-modeling"),
    ("summarization", {"text": "a b c", "model_name": "demo/tiny-bert-mlm"}, "encoder-decoder"),
])
def test_model_without_head_is_422(tsrv, task, body, head):
    r = call(tsrv, "/tasks/" + task, body)
    assert r.status_code == 422, r.text
    assert head in r.json()["detail"]


@pytest.mark.parametrize("task,body,field", [
    ("classification", {"text": 5, "model_name": "demo/tiny-bert-classification"}, "text"),
    ("classification", {"text": "a", "model_name": "demo/tiny-bert-classification", "foo": 1}, "foo"),
    ("classification", {"text": "a", "model_name": "demo/tiny-bert-classification", "top_k": -2}, "top_k"),
    ("classification", {"text": "a"}, "model_name"),
    ("embeddings", {"text": "a", "model_name": "demo/tiny-bert-embeddings", "pooling": "avg"}, "pooling"),
    ("ner", {"text": "a", "model_name": "demo/tiny-bert-ner", "aggregation_strategy": "most"},
     "aggregation_strategy"),
    ("qa", {"question": "a?", "model_name": "demo/tiny-bert-qa"}, "context"),
    ("features", {"text": [], "model_name": "demo/tiny-bert-embeddings"}, "text"),
    ("tokenize", {"text": "a", "model_name": "demo/tiny-bert-ner", "max_length": "5"}, "max_length"),
    ("classification", {"text": "a", "model_name": "../etc"}, "model_name"),
])
def test_bad_fields_are_400_naming_them(tsrv, task, body, field):
    path = "/tokenize" if task == "tokenize" else "/tasks/" + task
    r = call(tsrv, path, body)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]


def test_no_mask_token_is_422(tsrv):
    r = call(tsrv, "/tasks/fill-mask", {"text": "no mask here", "model_name": "demo/tiny-bert-mlm"})
    assert r.status_code == 422, r.text


def test_malformed_body_and_permission(tsrv):
    r = tsrv.post("/tasks/embeddings", data=b"{not json", headers=tsrv.hdr)
    assert r.status_code == 400
    r = tsrv.post("/tasks/embeddings", json={"text": "a", "model_name": "demo/tiny-bert-embeddings"})
    assert r.status_code == 401
    secret, _ = tsrv.create_key(name="no-exec", permissions=("tasks:save",))
    r = tsrv.post("/tasks/embeddings", json={"text": "a", "model_name": "demo/tiny-bert-embeddings"},
                  headers=tsrv.auth(secret))
    assert r.status_code == 403


def test_executions_are_logged(tsrv):
    ok = call(tsrv, "/tasks/embeddings", {"text": "log me please", "model_name": "demo/tiny-bert-embeddings"},
              headers={**tsrv.hdr, "User-Agent": "tasks-test/1.0"})
    assert ok.status_code == 200
    bad = call(tsrv, "/tasks/fill-mask", {"text": "no mask", "model_name": "demo/tiny-bert-mlm"},
               headers={**tsrv.hdr, "User-Agent": "tasks-test/1.0"})
    assert bad.status_code == 422
    r = tsrv.get("/logs", params={"model_name": "demo/tiny-bert-embeddings", "task_type": "embeddings"},
                 headers=tsrv.auth())
    assert r.status_code == 200, r.text
    logs = r.json()["data"]
    logs = logs.get("logs", logs) if isinstance(logs, dict) else logs
    mine = [l for l in logs if l.get("user_agent") == "tasks-test/1.0"]
    assert mine, logs[:3]
    l = mine[0]
    assert l["status"] == "success" and l["task_type"] == "embeddings"
    assert l["model_name"] == "demo/tiny-bert-embeddings"
    assert l.get("task_id") is None
    assert 0 <= l["execution_time"] < 60 and l["result_size"] > 0 and l["memory_usage"] > 0
    assert l["timestamp"] and l.get("ip_address")
    r = tsrv.get("/logs", params={"model_name": "demo/tiny-bert-mlm", "task_type": "fill-mask"},
                 headers=tsrv.auth())
    logs = r.json()["data"]
    logs = logs.get("logs", logs) if isinstance(logs, dict) else logs
    errs = [l for l in logs if l.get("user_agent") == "tasks-test/1.0"]
    assert errs and errs[0]["status"] == "error" and errs[0]["error_message"]
