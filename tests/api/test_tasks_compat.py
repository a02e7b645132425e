"""Rerank, the OpenAI-compatible routes (/v1/embeddings, /v1/models) and the
original product's routes (/embed, /classify, /qa, /ner, /fill-mask,
/summarize, /features, /stats), checked against /tasks answers and the
pipeline fixtures."""
import base64
import json
import math
import os
import struct

import pytest

from conftest import FIXTURES, start_demo_server, start_server
from test_tasks import call, close


@pytest.fixture(scope="module")
def xsrv():
    srv = start_demo_server("compat")
    r = srv.request("PUT", "/settings/max_loaded_models", json={"value": 64}, headers=srv.auth())
    assert r.status_code == 200, r.text
    yield srv
    srv.stop()


def fixture_case(name, cid):
    with open(os.path.join(FIXTURES, "pipelines", name), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            if c["id"] == cid:
                return c
    raise KeyError(cid)


def first_case(name, pred):
    with open(os.path.join(FIXTURES, "pipelines", name), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            if pred(c):
                return c
    raise KeyError(name)


# ── rerank ──

def test_rerank_sorts_pairs_by_cross_encoder_score(xsrv):
    m = "demo/tiny-bert-classification"
    q = "what do cats eat?"
    texts = ["cats eat fish", "the stock market fell", "dogs bark at night", "a cat food brand"]
    r = call(xsrv, "/tasks/rerank", {"query": q, "texts": texts, "model_name": m, "return_text": True})
    assert r.status_code == 200, r.text
    res = r.json()["data"]["results"]
    assert sorted(x["index"] for x in res) == list(range(len(texts)))
    assert all(texts[x["index"]] == x["text"] for x in res)
    scores = [x["score"] for x in res]
    assert scores == sorted(scores, reverse=True)
    # The same pairs through /tasks/classification: the last label's score.
    c = call(xsrv, "/tasks/classification", {"text": [q] * len(texts), "text_pair": texts,
                                            "model_name": m, "top_k": None})
    assert c.status_code == 200, c.text
    rows = c.json()["data"]["results"]
    labels = sorted({e["label"] for e in rows[0]})
    last = labels[-1]
    for x in res:
        want = [e["score"] for e in rows[x["index"]] if e["label"] == last][0]
        assert abs(x["score"] - want) <= 1e-6
    r = call(xsrv, "/tasks/rerank", {"query": q, "texts": texts, "model_name": m, "top_k": 2})
    top = r.json()["data"]["results"]
    assert [x["index"] for x in top] == [x["index"] for x in res[:2]] and "text" not in top[0]


def test_rerank_bad_input(xsrv):
    r = call(xsrv, "/tasks/rerank", {"query": "q", "texts": [], "model_name": "demo/tiny-bert-classification"})
    assert r.status_code == 400 and "texts" in r.json()["detail"]
    r = call(xsrv, "/tasks/rerank", {"query": "q", "texts": ["a"], "model_name": "demo/tiny-bert-ner"})
    assert r.status_code == 422


# ── OpenAI-compatible ──

def test_v1_embeddings_float_and_base64(xsrv):
    case = fixture_case("embeddings.jsonl", "emb-default-batch-mixed")
    texts = case["request"]["text"]
    want = case["expected"]["embeddings"]
    body = {"input": texts, "model": "demo/" + case["model"]}
    r = call(xsrv, "/v1/embeddings", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "list" and out["model"] == body["model"]
    assert [d["index"] for d in out["data"]] == list(range(len(texts)))
    assert all(d["object"] == "embedding" for d in out["data"])
    close([d["embedding"] for d in out["data"]], want)
    tok = call(xsrv, "/tokenize", {"text": texts, "model_name": body["model"]}).json()["data"]["results"]
    n_tokens = sum(len(t["input_ids"]) for t in tok)
    assert out["usage"] == {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
    r = call(xsrv, "/v1/embeddings", {**body, "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    for d, w in zip(r.json()["data"], want):
        raw = base64.b64decode(d["embedding"])
        vec = struct.unpack("<%df" % (len(raw) // 4), raw)
        close(list(vec), w)
    r = call(xsrv, "/v1/embeddings", {"input": texts[0], "model": body["model"]})
    assert len(r.json()["data"]) == 1
    close(r.json()["data"][0]["embedding"], want[0])


def test_v1_embeddings_dimensions(xsrv):
    m = "demo/tiny-bert-embeddings"
    full = call(xsrv, "/v1/embeddings", {"input": "hello there", "model": m}).json()["data"][0]["embedding"]
    short = call(xsrv, "/v1/embeddings", {"input": "hello there", "model": m, "dimensions": 8})
    assert short.status_code == 200, short.text
    vec = short.json()["data"][0]["embedding"]
    assert len(vec) == 8
    norm_full = math.sqrt(sum(v * v for v in full))
    if abs(norm_full - 1) < 1e-3:  # unit vectors stay unit vectors
        assert abs(math.sqrt(sum(v * v for v in vec)) - 1) < 1e-5
    else:
        close(vec, full[:8])


@pytest.mark.parametrize("body,status,param", [
    ({"model": "demo/tiny-bert-embeddings"}, 400, "input"),
    ({"input": [1, 2, 3], "model": "demo/tiny-bert-embeddings"}, 400, "input"),
    ({"input": "a"}, 400, "model"),
    ({"input": "a", "model": "demo/tiny-bert-embeddings", "encoding_format": "hex"}, 400, "encoding_format"),
    ({"input": "a", "model": "demo/tiny-bert-embeddings", "dimensions": 0}, 400, "dimensions"),
    ({"input": "a", "model": "demo/tiny-bert-embeddings", "dimensions": 4096}, 400, "dimensions"),
    ({"input": "a", "model": "demo/tiny-bert-embeddings", "temperature": 1}, 400, "temperature"),
    ({"input": "a", "model": "nobody/nothing"}, 404, "model"),
])
def test_v1_embeddings_errors_in_openai_shape(xsrv, body, status, param):
    r = call(xsrv, "/v1/embeddings", body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["message"]
    assert err["type"] == "invalid_request_error"
    assert "success" not in r.json()


def test_v1_embeddings_bad_json_in_openai_shape(xsrv):
    r = xsrv.post("/v1/embeddings", data=b"{nope", headers=xsrv.hdr)
    assert r.status_code == 400 and "error" in r.json()


def test_v1_models_lists_the_cache(xsrv):
    r = xsrv.get("/v1/models", headers=xsrv.hdr)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "list"
    ids = [m["id"] for m in out["data"]]
    assert "demo/tiny-bert-embeddings" in ids and "demo/tiny-bart" in ids
    assert len(ids) == len(set(ids))
    assert all(m["object"] == "model" and m["owned_by"] and m["created"] > 0 for m in out["data"])


# ── the original product's routes ──

def test_legacy_embed_is_mean_pooling_without_normalisation(xsrv):
    case = first_case("embeddings.jsonl", lambda c: c["request"].get("pooling") == "mean"
                      and c["request"].get("normalize") is False and isinstance(c["request"]["text"], list))
    for path in ("/embed", "/embed/batch"):
        r = call(xsrv, path, {"texts": case["request"]["text"], "model": "demo/" + case["model"]})
        assert r.status_code == 200, r.text
        close(r.json()["embeddings"], case["expected"]["embeddings"])


def test_legacy_classify_qa_ner_fill_mask_features(xsrv):
    c = first_case("classification.jsonl", lambda c: isinstance(c["request"]["text"], list)
                   and "function_to_apply" not in c["request"])
    r = call(xsrv, "/classify", {"texts": c["request"]["text"], "model": "demo/" + c["model"]})
    assert r.status_code == 200, r.text
    close(r.json()["results"], [row[0] for row in c["expected"]["results"]])

    q = first_case("qa.jsonl", lambda c: set(c["request"]) == {"question", "context", "model_name"})
    r = call(xsrv, "/qa", {"question": q["request"]["question"], "context": q["request"]["context"],
                           "model": "demo/" + q["model"]})
    assert r.status_code == 200, r.text
    close(r.json(), q["expected"]["results"][0])

    n = first_case("ner.jsonl", lambda c: c["request"].get("aggregation_strategy") == "simple"
                   and "ignore_labels" not in c["request"] and isinstance(c["request"]["text"], str))
    r = call(xsrv, "/ner", {"text": n["request"]["text"], "model": "demo/" + n["model"]})
    assert r.status_code == 200, r.text
    close(r.json()["entities"], n["expected"]["results"][0])

    f = first_case("fill-mask.jsonl", lambda c: set(c["request"]) == {"text", "model_name"}
                   and c["request"]["text"].count("[MASK]") == 1)
    r = call(xsrv, "/fill-mask", {"text": f["request"]["text"], "model": "demo/" + f["model"]})
    assert r.status_code == 200, r.text
    close(r.json()["results"], f["expected"]["results"][0])

    e = first_case("features.jsonl", lambda c: isinstance(c["request"]["text"], str))
    r = call(xsrv, "/features", {"text": e["request"]["text"], "model": "demo/" + e["model"]})
    assert r.status_code == 200, r.text
    close(r.json()["features"], e["expected"]["features"][0])


def test_legacy_summarize(xsrv):
    s = first_case("summarization.jsonl", lambda c: set(c["request"]) == {"text", "max_length", "min_length"})
    r = call(xsrv, "/summarize", {"text": s["request"]["text"], "model": "demo/tiny-bart",
                                  "max_length": s["request"]["max_length"],
                                  "min_length": s["request"]["min_length"]})
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == s["expected"]["results"][0]["summary_text"]


def test_legacy_bad_input(xsrv):
    r = call(xsrv, "/embed", {"model": "demo/tiny-bert-embeddings"})
    assert r.status_code == 400 and "texts" in r.json()["detail"]
    r = call(xsrv, "/qa", {"question": "a", "model": "demo/tiny-bert-qa"})
    assert r.status_code == 400 and "context" in r.json()["detail"]
    r = call(xsrv, "/classify", {"texts": ["a"], "model": "nobody/none"})
    assert r.status_code == 404


def test_stats(xsrv):
    call(xsrv, "/tasks/embeddings", {"text": "x", "model_name": "demo/tiny-bert-embeddings"})
    r = xsrv.get("/stats/serving", headers=xsrv.hdr)
    assert r.status_code == 200, r.text
    s = r.json()
    assert "demo/tiny-bert-embeddings" in s["loaded_models"]
    b = s["batching"]
    assert b["batches"] >= 1 and b["batched_requests"] >= b["batches"]
    assert sum(b["batch_sizes"].values()) == b["batches"]


def test_access_count_and_last_accessed(xsrv):
    """Every execution bumps its model_cache entry (written in the background)."""
    import time
    m = "demo/tiny-distilbert-mlm"

    def entry():
        s = xsrv.get("/stats/serving", headers=xsrv.hdr).json()
        return [e for e in s["models"] if e["model_name"] == m][0]

    before = entry()
    n = 5
    for _ in range(n):
        assert call(xsrv, "/tasks/fill-mask", {"text": "a [MASK] b", "model_name": m}).status_code == 200
    deadline = time.monotonic() + 10
    while entry()["access_count"] < before["access_count"] + n and time.monotonic() < deadline:
        time.sleep(0.1)  # the counts are flushed about once a second
    after = entry()
    assert after["access_count"] == before["access_count"] + n
    assert after["last_accessed"] and after["last_accessed"] != before.get("last_accessed")


def test_batch_metrics_in_prometheus_text(xsrv):
    call(xsrv, "/tasks/embeddings", {"text": "m", "model_name": "demo/tiny-bert-embeddings"})
    r = xsrv.get("/metrics", headers=xsrv.auth())
    assert r.status_code == 200, r.text
    lines = dict(l.rsplit(" ", 1) for l in r.text.splitlines() if l.startswith("bertstudio_batch_size"))
    assert int(lines['bertstudio_batch_size_bucket{le="+Inf"}']) == int(lines["bertstudio_batch_size_count"]) >= 1
    assert int(lines["bertstudio_batch_size_sum"]) >= int(lines["bertstudio_batch_size_count"])


def test_clean_shutdown_with_loaded_models():
    """The task endpoints' models, batchers and access-count writer stop with
    the server (stop hook), after the last request, before the store closes."""
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    try:
        srv.hdr = srv.auth()
        for m in ("demo/tiny-bert-embeddings", "demo/tiny-bert-ner"):
            body = {"text": "bye", "model_name": m}
            r = call(srv, "/tasks/embeddings" if "embeddings" in m else "/tasks/ner", body)
            assert r.status_code == 200, r.text
    finally:
        rc = srv.stop()
    assert rc == 0, srv.log()[-2000:]


def test_deleted_model_stops_being_served(xsrv):
    """DELETE /models/{name} of a loaded model: later task requests get 404."""
    import shutil
    import tempfile
    src = tempfile.mkdtemp(prefix="bs-del-")
    folder = os.path.join(src, "victim")
    shutil.copytree(os.path.join(FIXTURES, "models", "tiny-bert-embeddings"), folder)
    r = xsrv.post("/models/import", json={"path": folder, "model_name": "test/victim"}, headers=xsrv.auth())
    assert r.status_code in (200, 201), r.text
    body = {"text": "still here?", "model_name": "test/victim"}
    assert call(xsrv, "/tasks/embeddings", body).status_code == 200
    r = xsrv.request("DELETE", "/models/test/victim", headers=xsrv.auth())
    assert r.status_code == 200, r.text
    r = call(xsrv, "/tasks/embeddings", body)
    assert r.status_code == 404, r.text
    shutil.rmtree(src, ignore_errors=True)


# ── /v1 refusals by authentication, permissions and rate limits ──

def assert_openai_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert "success" not in body, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["param"] is None and err["code"] == code
    return err


def test_v1_auth_errors_in_openai_shape(xsrv):
    body = {"input": "a", "model": "demo/tiny-bert-embeddings"}
    err = assert_openai_error(xsrv.post("/v1/embeddings", json=body), 401, "invalid_api_key")
    assert err["type"] == "invalid_request_error"
    assert_openai_error(xsrv.post("/v1/embeddings", json=body, headers=xsrv.auth("ak_" + "x" * 40)),
                        401, "invalid_api_key")
    reader, _ = xsrv.create_key(name="v1-reader", permissions=["admin:read"])
    err = assert_openai_error(xsrv.get("/v1/models", headers=xsrv.auth(reader)), 403,
                              "insufficient_permissions")
    assert "tasks:execute" in err["message"]
    once, _ = xsrv.create_key(name="v1-once", permissions=["tasks:execute"],
                              rate_limits={"requests_per_minute": 1, "requests_per_hour": 100})
    assert xsrv.get("/v1/models", headers=xsrv.auth(once)).status_code == 200
    r = xsrv.get("/v1/models", headers=xsrv.auth(once))
    err = assert_openai_error(r, 429, "rate_limit_exceeded")
    assert err["type"] == "requests" and int(r.headers["Retry-After"]) >= 1
    # The envelope stays for every other route.
    r = xsrv.get("/models", headers=xsrv.auth(once))
    assert r.status_code == 429 and r.json()["success"] is False


def test_503_while_loading_is_not_an_execution(xsrv):
    """A request answered 503 because its model is loading ran nothing: it is
    not logged, so the success rate of /logs/stats counts executions only."""
    secret, doc = xsrv.create_key(name="loader", permissions=["tasks:execute"],
                                  rate_limits={"requests_per_minute": 100000, "requests_per_hour": 1000000})
    model = "demo/tiny-bert-classification"
    r = xsrv.post(f"/models/{model}/unload", headers=xsrv.auth())
    assert r.status_code in (200, 404), r.text
    body = {"text": "load me first", "model_name": model}
    # A model that is not loaded answers 503 at once (it loads in the background).
    r = xsrv.post("/tasks/classification", json=body, headers=xsrv.auth(secret))
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    r = call(xsrv, "/tasks/classification", body, headers=xsrv.auth(secret))
    assert r.status_code == 200, r.text
    r = xsrv.get("/logs/stats", params={"api_key_id": doc["_id"]}, headers=xsrv.auth())
    assert r.status_code == 200, r.text
    groups = {g["_id"]: g for g in r.json()["data"]["groups"]}
    assert groups["classification"]["count"] == 1, groups
    assert groups["classification"]["success_rate"] == 1.0, groups


def test_long_answers_are_streamed_with_the_same_bytes(xsrv):
    """Above stream_answer_numbers, a features answer is sent chunked a row at
    a time: byte for byte the answer built whole, and logged with the same
    result_size."""
    body = {"text": [f"row {i} of a long batch, with some words" for i in range(24)],
            "model_name": "demo/tiny-bert-embeddings"}
    secret, doc = xsrv.create_key(name="streamer", permissions=["tasks:execute"],
                                  rate_limits={"requests_per_minute": 100000, "requests_per_hour": 1000000})

    def run(threshold):
        r = xsrv.request("PUT", "/settings/stream_answer_numbers", json={"value": threshold},
                         headers=xsrv.auth())
        assert r.status_code == 200, r.text
        return call(xsrv, "/tasks/features", body, headers=xsrv.auth(secret))

    try:
        whole = run(0)
        streamed = run(1)
    finally:
        run(65536)
    assert whole.status_code == streamed.status_code == 200, (whole.text[:200], streamed.text[:200])
    assert "Transfer-Encoding" not in whole.headers and whole.headers["Content-Length"]
    assert streamed.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in streamed.headers
    assert streamed.content == whole.content
    assert len(streamed.json()["data"]["features"]) == 24
    r = xsrv.get("/logs", params={"api_key_id": doc["_id"], "task_type": "features"}, headers=xsrv.auth())
    assert r.status_code == 200, r.text
    logs = r.json()["data"]["logs"]
    sizes = [l["result_size"] for l in logs if l["status"] == "success"]
    assert len(sizes) == 3 and len(set(sizes)) == 1, logs
    assert sizes[0] == len(whole.content) - len('{"success":true,"data":}')
