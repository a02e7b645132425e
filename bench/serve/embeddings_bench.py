#!/usr/bin/python3
"""Serving throughput of POST /tasks/embeddings: sequences/s and p50/p99
latency at several client concurrencies (default 1, 8, 64), one sentence
per request, on a BERT-base-shaped random-weight model (bench/make-model.py),
with the dynamic batcher's counters (GET /stats/serving) for each level.

Loopback only, bounded in time (--duration seconds per level after a short
warm-up). Starts its own server on a fresh data directory and stops it.

usage: /usr/bin/python3 bench/serve/embeddings_bench.py [--bin build/bertstudio]
       [--model-dir DIR (default: made with bench/make-model.py --no-onnx)]
       [--duration 15] [--concurrency 1,8,64] [--threads N (server)]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SENTENCES = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome and everyone should see it this weekend.",
    "Two dogs are playing in the snow near the old bridge.",
    "The stock market fell sharply after the announcement on Tuesday.",
    "She plays the violin in the city orchestra every Sunday evening.",
    "Researchers found a new species of frog in the rainforest.",
    "Please send me the report before the meeting tomorrow morning.",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_v, p):
    if not sorted_v:
        return float("nan")
    k = min(len(sorted_v) - 1, max(0, int(round(p / 100.0 * (len(sorted_v) - 1)))))
    return sorted_v[k]


def run_level(url, headers, model, conc, duration):
    lat, errors = [], []
    lock = threading.Lock()
    stop_at = [0.0]

    def client(i):
        s = requests.Session()
        n = i
        mine = []
        while time.monotonic() < stop_at[0]:
            body = {"text": SENTENCES[n % len(SENTENCES)], "model_name": model}
            n += 1
            t0 = time.monotonic()
            r = s.post(url + "/tasks/embeddings", json=body, headers=headers, timeout=120)
            dt = time.monotonic() - t0
            if r.status_code == 200:
                mine.append(dt)
            else:
                with lock:
                    errors.append(r.status_code)
        with lock:
            lat.extend(mine)

    # warm-up (not counted)
    stop_at[0] = time.monotonic() + 2
    ts = [threading.Thread(target=client, args=(i,)) for i in range(conc)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    lat.clear()
    errors.clear()
    before = requests.get(url + "/stats/serving", headers=headers).json()["batching"]
    t0 = time.monotonic()
    stop_at[0] = t0 + duration
    ts = [threading.Thread(target=client, args=(i,)) for i in range(conc)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    elapsed = time.monotonic() - t0
    after = requests.get(url + "/stats/serving", headers=headers).json()["batching"]
    lat.sort()
    batches = after["batches"] - before["batches"]
    reqs = after["batched_requests"] - before["batched_requests"]
    return {
        "conc": conc, "seq_s": len(lat) / elapsed, "p50": percentile(lat, 50) * 1000,
        "p99": percentile(lat, 99) * 1000, "n": len(lat), "errors": len(errors),
        "avg_batch": reqs / batches if batches else float("nan"), "max_batch": after["max_batch_size"],
    }


def start_server(bin_path, model_dir, work, threads, extra=(), models=None, env=None, settings=None,
                 name="server"):
    """Starts `bertstudio serve` on a fresh data dir under work/name with
    model_dir as demo/bert-base (or each NAME: DIR of models as demo/NAME), a
    bench API key and no per-IP limit; PUTs each of settings (name: value)
    with the admin key; with model_dir, waits until demo/bert-base answers.
    env adds variables to the server's environment only. Returns (process,
    url, headers, model name or None)."""
    work = os.path.join(work, name)
    data = os.path.join(work, "data")
    os.makedirs(data)
    # The models enter the cache the way the demo models do: imported at
    # first start from BERTSTUDIO_DEMO_MODELS (as demo/NAME).
    src = os.path.join(work, "models-src")
    os.makedirs(src)
    for n, d in (models or {"bert-base": model_dir}).items():
        os.symlink(os.path.abspath(d), os.path.join(src, n))
    port = free_port()
    out = open(os.path.join(work, "server.out"), "w")
    proc = subprocess.Popen([bin_path, "serve", "--quiet", "--port", str(port), "--data-dir", data,
                             "--threads", str(threads), *extra], stdout=out,
                            stderr=open(os.path.join(work, "server.err"), "w"),
                            env={**os.environ, **(env or {}), "BERTSTUDIO_DEMO_MODELS": src})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # the first start imports the models
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{bin_path}: server did not start: "
                             + open(os.path.join(work, "server.err")).read()[-2000:])
        time.sleep(0.05)
    key = re.search(r"ak_[0-9A-Za-z_-]+", open(os.path.join(work, "server.out")).read()).group(0)
    admin = {"Authorization": "Bearer " + key}
    requests.put(url + "/settings/per_ip_requests_per_minute", json={"value": 100000000}, headers=admin)
    for k, v in (settings or {}).items():
        r = requests.put(url + "/settings/" + k, json={"value": v}, headers=admin)
        if r.status_code != 200:
            raise SystemExit(f"{bin_path}: setting {k}: {r.status_code} {r.text[:300]}")
    r = requests.post(url + "/api-keys", headers=admin, json={
        "name": "bench", "permissions": ["tasks:execute"],
        "rate_limits": {"requests_per_minute": 100000000, "requests_per_hour": 100000000}})
    headers = {"Authorization": "Bearer " + r.json()["data"]["api_key"]}
    if models:
        return proc, url, headers, None
    model = "demo/bert-base"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # first use imports and loads the model (503 meanwhile)
        r = requests.post(url + "/tasks/embeddings", json={"text": "hi", "model_name": model},
                          headers=headers)
        if r.status_code == 200:
            break
        if r.status_code not in (503, 404):
            raise SystemExit(r.text)
        time.sleep(0.2)
    return proc, url, headers, model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bertstudio"))
    ap.add_argument("--model-dir")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--threads", type=int, default=64)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bs-serve-bench-")
    proc = None
    try:
        model_dir = a.model_dir
        if not model_dir:
            model_dir = os.path.join(work, "bert-base")
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make-model.py"), model_dir,
                            "--no-onnx"], check=True, stdout=subprocess.DEVNULL)
        proc, url, headers, model = start_server(a.bin, model_dir, work, a.threads)
        print(f"{'clients':>7} {'seq/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'avg batch':>9} {'max batch':>9}"
              f" {'requests':>8} {'errors':>6}")
        for c in [int(x) for x in a.concurrency.split(",")]:
            m = run_level(url, headers, model, c, a.duration)
            print(f"{m['conc']:>7} {m['seq_s']:>8.1f} {m['p50']:>8.1f} {m['p99']:>8.1f} {m['avg_batch']:>9.2f}"
                  f" {m['max_batch']:>9} {m['n']:>8} {m['errors']:>6}", flush=True)
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
