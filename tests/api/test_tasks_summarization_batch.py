"""Summarization requests in flight together on one model share their encoder
pass and their decoder steps (the batcher runs the steps of every generating
request as one decoder pass), and each answer is exactly the one the
request gets alone: greedy and beam search, different inputs, lengths,
num_beams, max_length and penalties. /stats/serving's decoder_steps shows
that steps were shared."""
import json
import os
import threading

import pytest

from conftest import FIXTURES, start_server
from test_tasks import call
from test_tasks_concurrency import batching, held_round

MODEL = "demo/tiny-bart"


def cases():
    out = []
    with open(os.path.join(FIXTURES, "pipelines", "summarization.jsonl"), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            body = dict(c["request"])
            body["model_name"] = MODEL
            out.append((c["id"], body))
    return out


@pytest.fixture(scope="module")
def ssrv():
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")},
                       extra_args=("--threads", "24"))
    secret, _ = srv.create_key(name="summarization-batch", permissions=("tasks:execute",),
                               rate_limits={"requests_per_minute": 1000000,
                                            "requests_per_hour": 100000000})
    srv.hdr = srv.auth(secret)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def alone(ssrv):
    """Every case one at a time: the reference answers."""
    out = {}
    for cid, body in cases():
        r = call(ssrv, "/tasks/summarization", body)
        assert r.status_code == 200, (cid, r.text)
        out[cid] = r.json()["data"]
    steps = batching(ssrv)["decoder_steps"]
    # One at a time, every decoder pass served one request.
    assert steps["steps"] > 0 and steps["max_requests"] == 1, steps
    return out


def test_eight_held_requests_share_steps_and_answer_as_alone(ssrv, alone):
    picked = ["defaults-1", "greedy-ngram2", "beam2-es-true", "beam4-lp0.5",
              "beam4-maxlen12", "beam3-max-new-tokens-10", "long-input-truncated",
              "batch2-greedy"]
    by_id = dict(cases())
    before = batching(ssrv)
    # Held until each request's encoder pass is queued, then released: they
    # start as one encoder forward and generate together.
    answers = held_round(ssrv, [("/tasks/summarization", by_id[c]) for c in picked])
    for cid, r in zip(picked, answers):
        assert r.status_code == 200, (cid, r.text[:300])
        assert r.json()["data"] == alone[cid], f"{cid}: differs from its lone answer"
    after = batching(ssrv)
    assert after["max_batch_size"] >= len(picked), after  # one encoder forward
    b, a = before["decoder_steps"], after["decoder_steps"]
    steps, served = a["steps"] - b["steps"], a["requests"] - b["requests"]
    assert a["max_requests"] > 1, a
    assert served > steps, (b, a)  # more than one request per decoder pass on average
    assert a["rows"] - b["rows"] > served  # beams: several rows per request
    metrics = ssrv.get("/metrics", headers=ssrv.auth()).text
    assert "bertstudio_decoder_step_size_count" in metrics


def test_free_running_clients_answer_as_alone(ssrv, alone):
    """8 clients, each sending every case in its own order, unsynchronised:
    requests join and leave the shared steps at any point."""
    all_cases = cases()
    failures = []
    lock = threading.Lock()

    def client(k):
        mine = all_cases[k * 3:] + all_cases[:k * 3]
        for cid, body in mine[:8]:
            r = call(ssrv, "/tasks/summarization", body)
            msg = None
            if r.status_code != 200:
                msg = f"{cid}: {r.status_code} {r.text[:200]}"
            elif r.json()["data"] != alone[cid]:
                msg = f"{cid}: differs from its lone answer"
            if msg:
                with lock:
                    failures.append(msg)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
