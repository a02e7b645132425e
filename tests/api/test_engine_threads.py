"""The server's models share one engine context: with three models loaded,
the process runs as many compute threads as the context's pool has (one per
core: the workers, named bs-compute, plus the calling batcher thread), not a
pool per model."""
import os
import time

import pytest

from conftest import start_demo_server, start_server

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


def run_task(srv, task, model):
    """One task request, retried while the model loads (503 + Retry-After)."""
    end = time.monotonic() + 60
    while True:
        r = srv.post(f"/tasks/{task}", json={"text": "hello world", "model_name": model}, headers=srv.hdr)
        if r.status_code != 503 or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text


def test_three_models_one_compute_pool(esrv):
    r = esrv.request("PUT", "/settings/max_loaded_models", json={"value": 3}, headers=esrv.auth())
    assert r.status_code == 200, r.text
    for model, task in zip(MODELS, TASKS):
        run_task(esrv, task, model)
    loaded = esrv.get("/models/loaded", headers=esrv.auth()).json()["data"]["models"]
    assert {m["model_name"] for m in loaded} >= set(MODELS)
    assert compute_threads(esrv.proc.pid) == os.cpu_count() - 1


def test_stats_report_the_kernels(esrv):
    """/stats/serving names the kernel path every model runs and why (what the
    load log says), the int8 kernel and the shared compute threads."""
    run_task(esrv, "embeddings", MODELS[2])  # a model is loaded, and logged its kernels
    e = esrv.get("/stats/serving", headers=esrv.hdr).json()["engine"]
    assert e["kernels"] in ("portable C", "avx2+fma3", "avx2+fma3, int8 avx-vnni", "avx512")
    assert e["compute_threads"] == os.cpu_count()
    assert e["int8_kernel"] and e["kernels_reason"]
    assert f"kernels: {e['kernels']} ({e['kernels_reason']})" in esrv.log()  # a model loaded above
    metrics = esrv.get("/metrics", headers=esrv.auth()).text.splitlines()
    info = f'bertstudio_engine_info{{kernels="{e["kernels"]}",int8_kernel="{e["int8_kernel"]}"}} 1'
    assert info in metrics and "# TYPE bertstudio_engine_info gauge" in metrics
    assert f"bertstudio_compute_threads {os.cpu_count()}" in metrics


def test_stats_kernels_follow_bs_cpu():
    srv = start_server(env={"BS_CPU": "portable"})
    try:
        e = srv.get("/stats/serving", headers=srv.auth()).json()["engine"]
        assert e["kernels"] == "portable C" and e["int8_kernel"] == "portable C"
        assert "BS_CPU=portable" in e["kernels_reason"]
        metrics = srv.get("/metrics", headers=srv.auth()).text
        assert 'bertstudio_engine_info{kernels="portable C",int8_kernel="portable C"} 1' in metrics
    finally:
        srv.stop()
