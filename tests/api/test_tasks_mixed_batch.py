"""The batcher between tokenization and the forward pass, over HTTP: 64
clients mixing classification, rerank, /tasks/embeddings, /v1/embeddings and
the original /classify on one model (with NER and long-context QA windows on
their own models at the same time) get their one-at-a-time answers; a held
round shows sequences of different routes in one forward pass; and bad
requests in a batch (too long, wrong head) fail alone with their 4xx while
their neighbours succeed."""
import os
import time

import pytest

from conftest import FIXTURES, start_server
from test_tasks_concurrency import batching, held_round, run_clients, same

CLS = "demo/tiny-bert-classification"
CLIENTS = 64

LONG_CONTEXT = " ".join(
    f"Paragraph {i}: the tower number {i} was built in {1800 + i} in the city of Town{i}, "
    "which lies by a river and has a market every week." for i in range(12))


def mixed_requests():
    """(path, body, id): one model's routes, then NER and QA windows."""
    reqs = []
    for i in range(4):
        reqs.append(("/tasks/classification", {"text": [f"I loved it {i}", f"awful day number {i}"],
                                               "model_name": CLS, "top_k": None}, f"cls-{i}"))
        reqs.append(("/tasks/rerank", {"query": f"what do cats eat {i}?",
                                       "texts": ["cats eat fish", "stocks fell", f"cat food {i}"],
                                       "model_name": CLS}, f"rerank-{i}"))
        reqs.append(("/tasks/embeddings", {"text": f"an embedded sentence {i}", "model_name": CLS},
                     f"emb-{i}"))
        reqs.append(("/v1/embeddings", {"input": [f"openai input {i}", "second input"], "model": CLS},
                     f"v1-{i}"))
        reqs.append(("/classify", {"text": f"the original route {i}", "model": CLS}, f"orig-{i}"))
        reqs.append(("/tasks/ner", {"text": f"Alice {i} moved to Paris and met Bob.",
                                    "model_name": "demo/tiny-bert-ner"}, f"ner-{i}"))
        reqs.append(("/tasks/qa", {"question": f"When was tower number {i + 3} built?",
                                   "context": LONG_CONTEXT, "max_seq_len": 64, "doc_stride": 24,
                                   "model_name": "demo/tiny-bert-qa"}, f"qa-{i}"))
    return reqs


def answer(r):
    body = r.json()
    return body["data"] if isinstance(body, dict) and "data" in body else body


@pytest.fixture(scope="module")
def msrv():
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")},
                       extra_args=("--threads", "80"))
    secret, _ = srv.create_key(name="mixed", permissions=("tasks:execute",),
                               rate_limits={"requests_per_minute": 1000000,
                                            "requests_per_hour": 100000000})
    srv.hdr = srv.auth(secret)
    yield srv
    srv.stop()


def post(srv, path, body):
    """One call; a 503 (model loading) is retried after its Retry-After hint."""
    for _ in range(200):
        r = srv.post(path, json=body, headers=srv.hdr)
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")) / 20)
    return r


def sequential(srv, reqs):
    want = {}
    for path, body, cid in reqs:
        r = post(srv, path, body)
        assert r.status_code == 200, (cid, r.text[:300])
        want[cid] = answer(r)
    return want


def test_mixed_routes_concurrent_equal_sequential(msrv):
    reqs = mixed_requests()
    want = sequential(msrv, reqs)
    # The QA context really is cut into several windows.
    assert LONG_CONTEXT.count(" ") > 64 * 3
    work = []
    for rnd in range(3):
        for path, body, cid in reqs[rnd:] + reqs[:rnd]:
            def check(r, cid=cid):
                if r.status_code != 200:
                    return f"{cid}: {r.status_code} {r.text[:200]}"
                if not same(answer(r), want[cid]):
                    return f"{cid}: the answer differs from the one-at-a-time answer"
                return None
            work.append((path, body, check))
    before = batching(msrv)
    failures = run_clients(msrv, work, CLIENTS)
    assert not failures, failures[:5]
    after = batching(msrv)
    assert after["batches"] > before["batches"]


def test_routes_share_one_forward(msrv):
    """A held round on one model: classification, rerank pairs, embeddings and
    /v1/embeddings sequences run in one pass, and the counters say so."""
    reqs = [x for x in mixed_requests() if x[1].get("model_name", x[1].get("model")) == CLS][:5]
    want = sequential(msrv, reqs)
    before = batching(msrv)
    answers = held_round(msrv, [(p, b) for p, b, _ in reqs])
    for (_, _, cid), r in zip(reqs, answers):
        assert r.status_code == 200, (cid, r.text[:200])
        assert same(answer(r), want[cid]), cid
    after = batching(msrv)
    assert after["mixed_route_batches"] > before["mixed_route_batches"], (before, after)
    grew = {k for k, v in after["route_sequences"].items() if v > before["route_sequences"][k]}
    assert {"classification", "rerank", "embeddings", "v1-embeddings", "original"} <= grew, grew
    assert after["max_batch_size"] >= 2


def test_bad_requests_fail_alone(msrv):
    """Inside a held batch: a text over the size limit (400) and a task the
    model has no head for (422) fail alone; the neighbours get their answers."""
    good = [("/tasks/classification", {"text": "a fine neighbour", "model_name": CLS}),
            ("/tasks/rerank", {"query": "q", "texts": ["a", "b"], "model_name": CLS}),
            ("/v1/embeddings", {"input": "another neighbour", "model": CLS})]
    want = [answer(post(msrv, p, b)) for p, b in good]
    post(msrv, "/tasks/ner", {"text": "warm", "model_name": "demo/tiny-bert-ner"})
    bad = [("/tasks/classification", {"text": "x" * ((1 << 20) + 1), "model_name": CLS}),
           ("/tasks/ner", {"text": "Alice in Paris", "model_name": CLS})]
    bodies = [good[0], bad[0], good[1], bad[1], good[2]]
    answers = held_round(msrv, bodies)
    assert answers[1].status_code == 400, answers[1].text[:200]
    assert "text" in answers[1].text and "limit" in answers[1].text
    assert answers[3].status_code == 422, answers[3].text[:200]
    assert "token-classification" in answers[3].text
    for i, w in zip((0, 2, 4), want):
        assert answers[i].status_code == 200, answers[i].text[:200]
        assert same(answer(answers[i]), w)
