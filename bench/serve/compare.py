#!/usr/bin/python3
"""Our server against a transformers.js server (bench/serve/peer-server.mjs) on
POST /tasks/embeddings: sequences/s and p50/p99 latency at each concurrency,
one sentence per request, same model (safetensors for ours, its ONNX copy for
the peer), same machine, both with 2 compute threads, loopback only.

The two servers run side by side (the idle one costs no CPU) and the levels
alternate between them, the order flipping each round, so background load
hits both alike. The load generator is wrk (Debian's package; one thread,
one keep-alive connection per client, POST bodies cycling through the
sentences, 300 s timeout so that no slow answer is dropped from the
latencies) or, with --client asyncio, one Python asyncio loop over raw
HTTP/1.1 keep-alive connections. With wrk, p50/p99 of several rounds are the
median of each round's; with asyncio, percentiles of the pooled latencies.
Before measuring, one sentence is embedded by both: the cosine must be ~1.
Each level runs --duration seconds, or longer when many clients would
otherwise see no answer in the window (level_duration; at most
--max-duration), after a 2 s warm-up and a wait until the server is idle.

usage: /usr/bin/python3 bench/serve/compare.py --bin build/bertstudio
       [--model-dir DIR (make-variants.py's emb: sentence-transformers files + onnx/model.onnx;
                         default bench/out/serve/emb, made by bench/serve/make-models.sh)]
       [--tjs DIR (holds node_modules/@huggingface/transformers; default bench/serve,
                   installed by bench/serve/deps.sh)]
       [--duration 15] [--max-duration 60] [--concurrency 1,8,64] [--rounds 1] [--threads 2]
       [--precision f32|fp16|bf16|int8] [--cpu portable|avx2|avxvnni|avx512]
       [--hide-avx512] [--client wrk|asyncio] [--json FILE]

--cpu sets BS_CPU in our server's environment only (the kernel path it may
use); the peer's ONNX Runtime picks its own kernels from the CPU's flags and
has no switch for it. --hide-avx512 runs both servers under
bench/hide-avx512.sh, which hides AVX-512 from cpuid: each picks its AVX2
path by itself, as on an AVX2-only CPU. --json writes the table's values and
the run's settings for bench/serve/figures.py.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from embeddings_bench import SENTENCES, percentile, start_server  # noqa: E402


async def read_response(reader):
    """Reads one HTTP/1.1 response (Content-Length or chunked body) and
    returns its status."""
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
        elif k.lower() == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def one_client(port, headers, model, first, stop_at, lat, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    n = first
    try:
        while time.monotonic() < stop_at:
            body = json.dumps({"text": SENTENCES[n % len(SENTENCES)], "model_name": model}).encode()
            n += 1
            t0 = time.monotonic()
            writer.write(f"POST /tasks/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                         + body)
            status = await read_response(reader)
            dt = time.monotonic() - t0
            (lat if status == 200 else errors).append(dt if status == 200 else status)
    finally:
        writer.close()


async def load(port, headers, model, conc, seconds):
    lat, errors = [], []
    stop_at = time.monotonic() + seconds
    t0 = time.monotonic()
    await asyncio.gather(*(one_client(port, headers, model, i, stop_at, lat, errors) for i in range(conc)))
    return lat, errors, time.monotonic() - t0


# wrk's report, one JSON line after "WRK " (a %-format: the percent signs doubled)
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"n": %%d, "us": %%d, "errors": %%d, "p50": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

WRK_SCRIPT = """
local sentences = {%s}
local headers = {%s}
local n = 0
request = function()
  n = n + 1
  local body = '{"text": ' .. sentences[n %% #sentences + 1] .. ', "model_name": %s}'
  return wrk.format("POST", "/tasks/embeddings", headers, body)
end
""" + WRK_DONE


def wrk_load(url, headers, model, conc, seconds, work):
    """One wrk run; returns (requests, elapsed s, errors, p50 s, p99 s)."""
    script = os.path.join(work, "load.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % (", ".join("[[%s]]" % json.dumps(t) for t in SENTENCES),
                              ", ".join("[ [[%s]] ] = [[%s]]" % kv for kv in
                                        {**headers, "Content-Type": "application/json"}.items()),
                              json.dumps(model)))  # a model name has no quote or backslash
    out = subprocess.run(["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "--timeout", "300s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    w = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
    return w["n"], w["us"] / 1e6, w["errors"], w["p50"] / 1e6, w["p99"] / 1e6


def serving(url, headers):
    """GET /stats/serving (GET /stats before the original product's /stats took that path)."""
    r = requests.get(url + "/stats/serving", headers=headers)
    if r.status_code == 404:
        r = requests.get(url + "/stats", headers=headers)
    body = r.json()
    return body.get("data", body) if "batching" not in body else body


def batching(url, headers):
    return serving(url, headers)["batching"]


def quiet(url, headers, limit=120):
    """Waits until the server has nothing queued or running: what the
    warm-up's clients left behind must not run inside the measured window."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        b = batching(url, headers)
        if not b.get("queued", 0) and not b.get("running", 0):
            return
        time.sleep(0.1)


def level_duration(base, cap, conc, rate1):
    """A level's measured seconds: at least base, and long enough for each
    client to be served about 4 times at the rate one client got (rate1,
    per second; None when not measured yet), but at most cap. With 64
    clients on a slow or busy machine, one batch of all of them can take
    longer than a short window, which would then count no answer at all."""
    if not rate1:
        return base
    return max(base, min(cap, 4.0 * conc / rate1))


def run_level(url, headers, model, conc, duration, client, work):
    port = int(url.rsplit(":", 1)[1])
    before = None
    if client == "wrk":
        wrk_load(url, headers, model, conc, 2, work)  # warm-up, not counted
        quiet(url, headers)
        before = batching(url, headers)
        n, elapsed, errors, p50, p99 = wrk_load(url, headers, model, conc, max(1, round(duration)), work)
        m = {"n": n, "elapsed": elapsed, "errors": errors, "p50": p50, "p99": p99}
    else:
        asyncio.run(load(port, headers, model, conc, 2))  # warm-up, not counted
        quiet(url, headers)
        before = batching(url, headers)
        lat, errors, elapsed = asyncio.run(load(port, headers, model, conc, duration))
        lat.sort()
        m = {"n": len(lat), "elapsed": elapsed, "errors": len(errors), "lat": lat,
             "p50": percentile(lat, 50), "p99": percentile(lat, 99)}
    after = batching(url, headers)
    m["batches"] = after["batches"] - before["batches"]
    m["reqs"] = after["batched_requests"] - before["batched_requests"]
    return m


def start_peer(node, script, tjs, model_dir, threads, work, env=None):
    out = open(os.path.join(work, "peer.out"), "w+")
    proc = subprocess.Popen([node, script, "--tjs", tjs, "--model", model_dir, "--threads", str(threads)],
                            stdout=out, stderr=open(os.path.join(work, "peer.err"), "w"),
                            env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        out.seek(0)
        text = out.read()
        if "listening" in text:
            return proc, "http://127.0.0.1:" + text.split("listening")[1].split()[0]
        if proc.poll() is not None:
            raise SystemExit("peer failed: " + open(os.path.join(work, "peer.err")).read())
        time.sleep(0.2)
    raise SystemExit("peer did not start")


def embed(url, headers, model, text):
    r = requests.post(url + "/tasks/embeddings", json={"text": text, "model_name": model}, headers=headers)
    r.raise_for_status()
    return np.array(r.json()["data"]["embeddings"][0])


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "bertstudio"))
    ap.add_argument("--model-dir", default=os.path.join(os.path.dirname(HERE), "out", "serve", "emb"),
                    help="default: bench/out/serve/emb (bench/serve/make-models.sh)")
    ap.add_argument("--tjs", default=HERE, help="default: bench/serve (bench/serve/deps.sh installs it)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--max-duration", type=float, default=60,
                    help="longest a level may run: at 64 clients a level runs up to 4 x 64 / (seq/s at 1 client) s")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="compute threads of both servers")
    ap.add_argument("--precision", default="f32", choices=("f32", "fp16", "bf16", "int8"),
                    help="our server's --precision (the peer computes in f32 either way)")
    ap.add_argument("--cpu", choices=("portable", "avx2", "avxvnni", "avx512"),
                    help="BS_CPU for our server: force a lower kernel path")
    ap.add_argument("--hide-avx512", action="store_true",
                    help="both servers under bench/hide-avx512.sh: AVX-512 hidden from cpuid")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--client", default="wrk", choices=("wrk", "asyncio"), help="the load generator")
    a = ap.parse_args()
    hidden = {}
    if a.hide_avx512:
        r = subprocess.run(["sh", os.path.join(os.path.dirname(HERE), "hide-avx512.sh"), "--env"],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit("--hide-avx512: " + r.stderr.strip())
        hidden = dict(ln.split("=", 1) for ln in r.stdout.splitlines())
    work = tempfile.mkdtemp(prefix="bs-serve-compare-")
    ours = peer = None
    try:
        # our engine uses one compute thread per core: pin the process to --threads cores
        ours, ours_url, ours_h, model = start_server(a.bin, a.model_dir, work, 1024,
                                                     ("--precision", a.precision),
                                                     env={**hidden, **({"BS_CPU": a.cpu} if a.cpu else {})})
        kernels = [ln.split("kernels:", 1)[1].strip() for ln in open(os.path.join(work, "server", "server.err"))
                   if "kernels:" in ln]
        print("our server's kernels: " + (kernels[-1] if kernels else "no kernel-path line in its log"), flush=True)
        if a.threads != os.cpu_count():
            print(f"note: our server uses {os.cpu_count()} compute threads (one per core)", file=sys.stderr)
        peer, peer_url = start_peer(a.node, os.path.join(HERE, "peer-server.mjs"), a.tjs, a.model_dir,
                                    a.threads, work, hidden)
        x, y = embed(ours_url, ours_h, model, SENTENCES[1]), embed(peer_url, {}, model, SENTENCES[1])
        cos = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        print(f"same model check: cosine(ours, peer) = {cos:.6f}, |x| = {np.linalg.norm(x):.4f}", flush=True)
        if cos < (0.99 if a.precision == "int8" else 0.999):  # bf16 gives ~0.9999, int8 ~0.995
            raise SystemExit("the two servers do not compute the same embedding")
        levels = [int(c) for c in a.concurrency.split(",")]
        res = {(s, c): [] for s in ("ours", "peer") for c in levels}
        servers = {"ours": (ours_url, ours_h), "peer": (peer_url, {})}
        durations = {}
        for r in range(a.rounds):
            rate1 = None  # the slower server's seq/s at the first level of this round
            for c in levels:
                durations[c] = level_duration(a.duration, a.max_duration, c, rate1)
                for s in (("ours", "peer") if (r + levels.index(c)) % 2 == 0 else ("peer", "ours")):
                    m = run_level(*servers[s], model, c, durations[c], a.client, work)
                    res[(s, c)].append(m)
                    if c == levels[0]:
                        rate1 = min(rate1 or float("inf"), m["n"] / m["elapsed"]) or None
                    print(f"round {r + 1} {s} c={c}: {m['n'] / m['elapsed']:.1f} seq/s p50 "
                          f"{m['p50'] * 1e3:.0f} ms p99 {m['p99'] * 1e3:.0f} ms, "
                          f"{m['reqs'] / max(1, m['batches']):.2f} req/batch, {m['errors']} errors, "
                          f"load {open('/proc/loadavg').read().split()[0]}", file=sys.stderr, flush=True)
        print(f"{'clients':>7} {'ours seq/s':>10} {'peer seq/s':>10} {'ratio':>6} {'ours p50':>8} {'ours p99':>8}"
              f" {'peer p50':>8} {'peer p99':>8} {'ours b':>6} {'peer b':>6} {'errors':>6}")
        table = []
        for c in levels:
            row = {}
            for s in ("ours", "peer"):
                ms = res[(s, c)]
                if all("lat" in m for m in ms):
                    lat = sorted(v for m in ms for v in m["lat"])
                    p50, p99 = percentile(lat, 50), percentile(lat, 99)
                else:
                    p50 = statistics.median(m["p50"] for m in ms)
                    p99 = statistics.median(m["p99"] for m in ms)
                row[s] = (sum(m["n"] for m in ms) / sum(m["elapsed"] for m in ms), p50 * 1e3, p99 * 1e3,
                          sum(m["reqs"] for m in ms) / max(1, sum(m["batches"] for m in ms)),
                          sum(m["errors"] for m in ms))
            o, p = row["ours"], row["peer"]
            table.append({"clients": c, "seconds": durations[c], "ours": dict(zip(("seq_s", "p50_ms", "p99_ms", "req_per_batch", "errors"), o)),
                          "peer": dict(zip(("seq_s", "p50_ms", "p99_ms", "req_per_batch", "errors"), p))})
            print(f"{c:>7} {o[0]:>10.1f} {p[0]:>10.1f} {o[0] / p[0]:>6.2f} {o[1]:>8.0f} {o[2]:>8.0f}"
                  f" {p[1]:>8.0f} {p[2]:>8.0f} {o[3]:>6.2f} {p[3]:>6.2f} {o[4] + p[4]:>6}")
        print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"precision": a.precision, "cpu": a.cpu, "hide_avx512": a.hide_avx512, "cosine": cos, "duration": a.duration,
                           "rounds": a.rounds, "client": a.client, "threads": a.threads,
                           "kernels": kernels[-1] if kernels else None, "levels": table}, f, indent=1)
        failed = sum(m["errors"] for ms in res.values() for m in ms)
        if failed:
            raise SystemExit(f"{failed} requests failed: the figures above are not valid")
    finally:
        stop(peer)
        stop(ours)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
