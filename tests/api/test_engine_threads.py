"""The server's models share one engine context: with three models loaded,
the process runs as many compute threads as the context's pool has (one per
core: the workers, named bs-compute, plus the calling batcher thread), not a
pool per model."""
import os
import time

import pytest

from conftest import start_demo_server

MODELS = ("demo/tiny-bert-classification", "demo/tiny-bert-ner", "demo/tiny-bert-embeddings")
TASKS = ("classification", "ner", "embeddings")


@pytest.fixture(scope="module")
def esrv():
    srv = start_demo_server("engine-threads")
    yield srv
    srv.stop()


def compute_threads(pid):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                n += f.read().strip() == "bs-compute"
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile (ENOENT or ESRCH)
    return n


def test_three_models_one_compute_pool(esrv):
    r = esrv.request("PUT", "/settings/max_loaded_models", json={"value": 3}, headers=esrv.auth())
    assert r.status_code == 200, r.text
    for model, task in zip(MODELS, TASKS):
        end = time.monotonic() + 60
        while True:  # 503 + Retry-After while the model loads
            r = esrv.post(f"/tasks/{task}", json={"text": "hello world", "model_name": model},
                          headers=esrv.hdr)
            if r.status_code != 503 or time.monotonic() > end:
                break
            time.sleep(0.1)
        assert r.status_code == 200, r.text
    loaded = esrv.get("/models/loaded", headers=esrv.auth()).json()["data"]["models"]
    assert {m["model_name"] for m in loaded} >= set(MODELS)
    assert compute_threads(esrv.proc.pid) == os.cpu_count() - 1
