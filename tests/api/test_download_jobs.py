"""Download jobs are capped and reclaimed (issue 17 M4): 3,000 downloads of
distinct names made 3,700 threads, and their finished threads kept 27 GB of
address space. Against the local fake Hub, on 127.0.0.1."""
import os
import threading
import time

import pytest

from conftest import FIXTURES, start_server
from hub_server import fake_hub  # noqa: F401  (fixture)
from test_health import assert_error

FIXTURE_MODELS = sorted(d for d in os.listdir(os.path.join(FIXTURES, "models"))
                        if os.path.isfile(os.path.join(FIXTURES, "models", d, "config.json")))


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.fixture
def srv(fake_hub):  # noqa: F811
    s = start_server(env={"HF_ENDPOINT": fake_hub.url, "BERTSTUDIO_DEMO_MODELS": ""})
    s.hub = fake_hub
    yield s
    s.stop()


def test_concurrent_downloads_are_capped(srv):
    h = srv.auth()
    gate = threading.Event()
    srv.hub.gates["model.safetensors"] = gate  # every download waits at its weights
    try:
        for name in FIXTURE_MODELS[:4]:
            r = srv.post("/models/download", headers=h, json={"model_name": f"fixtures/{name}"})
            assert r.status_code == 202, r.text
        r = srv.post("/models/download", headers=h, json={"model_name": f"fixtures/{FIXTURE_MODELS[4]}"})
        out = assert_error(r, 429)
        assert "max_concurrent_downloads" in out["detail"] and r.headers["Retry-After"]
    finally:
        gate.set()
    # Once they end, a new one starts (429 until then, as Retry-After says).
    deadline = time.monotonic() + 60
    while True:
        r = srv.post("/models/download", headers=h, json={"model_name": f"fixtures/{FIXTURE_MODELS[4]}",
                                                          "wait": True})
        if r.status_code != 429:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling for the held downloads to end
    assert r.status_code == 201, r.text


def test_finished_downloads_release_their_threads(srv):
    """Downloads of unknown repos, one after another: each thread and its
    8 MB stack are gone when its download ends. (The first hundred let
    malloc's per-thread arenas, bounded, reach their number.)"""
    h = srv.auth()
    pid = srv.proc.pid

    def run(lo, hi):
        for i in range(lo, hi):
            r = srv.post("/models/download", headers=h, json={"model_name": f"nobody/m{i}", "wait": True})
            assert r.status_code in (404, 502), r.text

    run(0, 100)
    threads0, vm0 = proc_status(pid, "Threads"), proc_status(pid, "VmSize")
    run(100, 300)
    threads1, vm1 = proc_status(pid, "Threads"), proc_status(pid, "VmSize")
    grown_mb = (vm1 - vm0) / 1024
    print(f"\n200 more finished downloads: threads {threads0} -> {threads1}, VmSize +{grown_mb:.0f} MB")
    assert threads1 <= threads0 + 4
    assert grown_mb < 200, grown_mb  # joinable threads kept 200 x 8 MB
