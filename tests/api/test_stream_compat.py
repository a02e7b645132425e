"""Long answers of the legacy POST /features and of the OpenAI-compatible
POST /v1/embeddings go out chunked, a row at a time, as /tasks/features does:
the same bytes as the answer built whole, each row equal to the text's own
answer, and logged with the same result_size."""
import base64
import struct

import pytest

from conftest import start_demo_server
from test_tasks import call

MODEL = "demo/tiny-bert-embeddings"


@pytest.fixture(scope="module")
def ssrv():
    srv = start_demo_server("streams")
    yield srv
    srv.stop()


def set_threshold(srv, value):
    r = srv.request("PUT", "/settings/stream_answer_numbers", json={"value": value}, headers=srv.auth())
    assert r.status_code == 200, r.text


def assert_chunked(r):
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in r.headers


def assert_whole(r):
    assert r.status_code == 200, r.text[:300]
    assert "Transfer-Encoding" not in r.headers
    assert int(r.headers["Content-Length"]) == len(r.content)


def long_texts(n, words):
    # Distinct texts, each longer than the model's 128 positions.
    return [" ".join(f"word{(i * 7 + j) % 50} text{i}" for j in range(words)) for i in range(n)]


def success_sizes(srv, task_type):
    r = srv.get("/logs", params={"api_key_id": srv.key_id, "task_type": task_type},
                headers=srv.auth())
    assert r.status_code == 200, r.text
    return [l["result_size"] for l in r.json()["data"]["logs"] if l["status"] == "success"]


def close_rows(got, want, tol=1e-4):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, list):
            close_rows(g, w, tol)
        else:
            assert abs(g - w) <= tol, (g, w)


def test_legacy_features_of_64_long_texts_is_streamed(ssrv):
    texts = long_texts(64, 128)  # 256 words each: truncated at the model's 128 positions
    set_threshold(ssrv, 65536)   # the default: 64 x 128 x 32 numbers are well above it
    streamed = call(ssrv, "/features", {"texts": texts, "model": MODEL})
    assert_chunked(streamed)
    feats = streamed.json()["features"]
    assert list(streamed.json()) == ["features"]
    assert len(feats) == 64 and all(len(f) == 128 and len(f[0]) == 32 for f in feats)
    set_threshold(ssrv, 0)
    try:
        whole = call(ssrv, "/features", {"texts": texts, "model": MODEL})
    finally:
        set_threshold(ssrv, 65536)
    assert_whole(whole)
    assert streamed.content == whole.content
    # Each row is the text's own answer, asked alone.
    for i in (0, 17, 63):
        alone = call(ssrv, "/features", {"texts": [texts[i]], "model": MODEL})
        assert_whole(alone)
        close_rows(feats[i], alone.json()["features"][0])
    # The streamed answer is logged with the size of the whole one.
    assert success_sizes(ssrv, "features").count(len(whole.content)) == 2


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_v1_embeddings_of_many_inputs_is_streamed(ssrv, fmt):
    texts = long_texts(200, 12)
    body = {"input": texts, "model": MODEL, "encoding_format": fmt}
    set_threshold(ssrv, 1000)  # 200 x 32 floats, base64 or not, are above it
    try:
        streamed = call(ssrv, "/v1/embeddings", body)
        set_threshold(ssrv, 0)
        whole = call(ssrv, "/v1/embeddings", body)
    finally:
        set_threshold(ssrv, 65536)
    assert_chunked(streamed)
    assert_whole(whole)
    assert streamed.content == whole.content
    out = streamed.json()
    assert out["object"] == "list" and out["model"] == MODEL
    assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] > 0
    assert [d["index"] for d in out["data"]] == list(range(len(texts)))

    def vector(d):
        if fmt == "float":
            return d["embedding"]
        raw = base64.b64decode(d["embedding"])
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))

    for i in (0, 99, 199):
        alone = call(ssrv, "/v1/embeddings", {"input": texts[i], "model": MODEL, "encoding_format": fmt})
        assert_whole(alone)
        assert alone.json()["data"][0]["object"] == "embedding"
        close_rows(vector(out["data"][i]), vector(alone.json()["data"][0]), 1e-5)
    assert len(vector(out["data"][0])) == 32


def test_short_answers_keep_content_length(ssrv):
    r = call(ssrv, "/v1/embeddings", {"input": ["a short one"], "model": MODEL})
    assert_whole(r)
    r = call(ssrv, "/features", {"texts": ["a short one"], "model": MODEL})
    assert_whole(r)
