#!/usr/bin/python3
"""Issue 13's serving figures, our server only, one or more binaries compared
in the same sitting (e.g. a build of the commit before the work and one of
after). Two loads, each at every client count:

  mixed   one model's routes mixed: /tasks/classification (two texts),
          /tasks/rerank (a query and four passages), /tasks/embeddings and
          /v1/embeddings (two inputs) to demo/cls, with /tasks/ner to
          demo/ner and /tasks/qa with a long context cut into windows
          (max_seq_len 128, doc_stride 32) to demo/qa at the same time;
  three   three models served at once: the requests cycle over
          classification on demo/cls, NER on demo/ner and QA (a short
          context) on demo/qa, so every client spreads over the three.

Models: bench/serve/make-models.sh's cls, ner and qa (BERT-base shape, random
weights), each server with max_loaded_models 3 so all three stay loaded.

Figures per binary and client count: requests/s, sequences/s (a request's
sequences: its texts, rerank pairs, /v1 inputs and QA windows, counted once
by sending each request alone to a server whose GET /stats/serving has
route_sequences; sequences/s is requests/s times their mean over the cycle,
so it assumes the answers counted follow the cycle's mix; without such a
server, only requests/s), p50/p99 latency of the
requests, and the batcher's requests per forward. And per binary: the
process's threads (/proc/PID/task) before any model is loaded, with the
three loaded and idle, and how many are named bs-compute (the shared
pool's workers; a pool of N threads has N-1 workers plus its caller).

The servers run side by side (the idle ones cost no CPU); each point runs
the binaries one after the other, the order rotating by round and level, so
background load hits all alike. The load generator is wrk (one thread, one
keep-alive connection per client, requests cycling through the list, 300 s
timeout) or, with --client asyncio, one Python asyncio loop. Each level
runs --duration seconds, or longer at many clients when one client's rate
says a short window would see few answers (compare.py's level_duration, at
most --max-duration), after a 2 s warm-up and a wait until nothing is
queued. p50/p99 of several rounds are the median of each round's.

usage: /usr/bin/python3 bench/serve/mixed.py --bin BEFORE --bin AFTER
       [--models DIR (make-models.sh's folder; default bench/out/serve)]
       [--load mixed,three] [--duration 10] [--max-duration 60] [--concurrency 1,8,64] [--rounds 1]
       [--precision f32] [--client wrk|asyncio] [--json FILE]
"""
import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import WRK_DONE, batching, level_duration, read_response, serving, stop  # noqa: E402
from embeddings_bench import SENTENCES, percentile, start_server  # noqa: E402

MODELS = ("cls", "ner", "qa")
LONG_CONTEXT = " ".join(
    f"Tower {i} was built in {1800 + i} in Town{i}, a city by a river with a weekly market."
    for i in range(8))
SHORT_CONTEXT = "The old tower was built in 1889 in Paris by a river."


def mixed_requests():
    """(path, body) of the mixed load, in the order the clients cycle them."""
    out = []
    for i in range(4):
        s = SENTENCES[i::4]
        out += [
            ("/tasks/classification", {"text": [s[0], s[1]], "model_name": "demo/cls"}),
            ("/tasks/rerank", {"query": f"what happened {i}?", "texts": SENTENCES[i:i + 4],
                               "model_name": "demo/cls"}),
            ("/tasks/ner", {"text": f"Alice {i} moved to Paris and met Bob at the market.",
                            "model_name": "demo/ner"}),
            ("/tasks/embeddings", {"text": s[0], "model_name": "demo/cls"}),
            ("/tasks/qa", {"question": f"When was tower {i + 2} built?", "context": LONG_CONTEXT,
                           "max_seq_len": 128, "doc_stride": 32, "model_name": "demo/qa"}),
            ("/v1/embeddings", {"input": [s[1], f"second input {i}"], "model": "demo/cls"}),
        ]
    return out


def three_requests():
    out = []
    for i, s in enumerate(SENTENCES):
        out += [
            ("/tasks/classification", {"text": s, "model_name": "demo/cls"}),
            ("/tasks/ner", {"text": f"{s} Alice met Bob {i} in Paris.", "model_name": "demo/ner"}),
            ("/tasks/qa", {"question": f"When was the tower built {i}?", "context": SHORT_CONTEXT,
                           "model_name": "demo/qa"}),
        ]
    return out


LOADS = {"mixed": mixed_requests, "three": three_requests}

WRK_SCRIPT = """
local reqs = {%s}
local headers = {%s}
local n = 0
request = function()
  n = n + 1
  local r = reqs[n %% #reqs + 1]
  return wrk.format("POST", r[1], headers, r[2])
end
""" + WRK_DONE


def lua_str(s):
    assert "]==]" not in s
    return "[==[" + s + "]==]"


def wrk_load(url, headers, reqs, conc, seconds, work):
    script = os.path.join(work, "mixed.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % (", ".join("{%s, %s}" % (lua_str(p), lua_str(json.dumps(b))) for p, b in reqs),
                              ", ".join("[ %s ] = %s" % (lua_str(k), lua_str(v)) for k, v in
                                        {**headers, "Content-Type": "application/json"}.items())))
    out = subprocess.run(["wrk", "-t1", f"-c{conc}", f"-d{max(1, round(seconds))}s", "--timeout", "300s",
                          "-s", script, url], capture_output=True, text=True)
    if "WRK " not in out.stdout:
        raise SystemExit(f"wrk failed: {out.stdout[-500:]} {out.stderr[-1000:]}")
    w = json.loads(out.stdout.split("WRK ", 1)[1].splitlines()[0])
    return {"n": w["n"], "elapsed": w["us"] / 1e6, "errors": w["errors"], "p50": w["p50"] / 1e6,
            "p99": w["p99"] / 1e6}


async def _client(port, headers, reqs, first, stop_at, lat, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    n = first
    try:
        while time.monotonic() < stop_at:
            path, body = reqs[n % len(reqs)]
            n += 1
            data = json.dumps(body).encode()
            t0 = time.monotonic()
            writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            status = await read_response(reader)
            (lat if status == 200 else errors).append(time.monotonic() - t0 if status == 200 else status)
    finally:
        writer.close()


def asyncio_load(url, headers, reqs, conc, seconds, work):
    port = int(url.rsplit(":", 1)[1])
    lat, errors = [], []

    async def run():
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, headers, reqs, i, stop_at, lat, errors) for i in range(conc)))

    t0 = time.monotonic()
    asyncio.run(run())
    lat.sort()
    return {"n": len(lat), "elapsed": time.monotonic() - t0, "errors": len(errors),
            "p50": percentile(lat, 50), "p99": percentile(lat, 99)}


def quiet(url, headers, limit=120):
    """Waits until nothing is queued: the warm-up's last requests (their
    clients gone) must not run inside the measured window."""
    end = time.monotonic() + limit
    while batching(url, headers).get("queued", 0) and time.monotonic() < end:
        time.sleep(0.1)


def post(url, headers, path, body):
    """One call, retried while the model loads (503)."""
    deadline = time.monotonic() + 300
    while True:
        r = requests.post(url + path, json=body, headers=headers, timeout=300)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def threads(pid):
    total = named = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                named += f.read().strip() == "bs-compute"
            total += 1
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile
    return total, named


def settle_threads(pid, seconds=3.0):
    """The thread counts once connection threads have ended: the smallest
    total seen over a few samples."""
    best = threads(pid)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.2)
        best = min(best, threads(pid))
    return best


def sequences_per_request(url, headers, reqs):
    """Each request's sequences, from route_sequences of /stats/serving
    around one lone call; None when the server has no such counter."""
    if "route_sequences" not in batching(url, headers):
        return None
    out = []
    for path, body in reqs:
        before = sum(batching(url, headers)["route_sequences"].values())
        r = post(url, headers, path, body)
        if r.status_code != 200:
            raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
        out.append(sum(batching(url, headers)["route_sequences"].values()) - before)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="a bertstudio binary (repeat to compare)")
    ap.add_argument("--models", default=os.path.join(HERE, "..", "out", "serve"))
    ap.add_argument("--load", default="mixed,three")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--max-duration", type=float, default=60,
                    help="longest a level may run (see compare.py's level_duration)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--precision", default="f32")
    ap.add_argument("--client", default="wrk", choices=("wrk", "asyncio"))
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()
    loads = a.load.split(",")
    levels = [int(c) for c in a.concurrency.split(",")]
    for m in MODELS:
        if not os.path.isfile(os.path.join(a.models, m, "model.safetensors")):
            raise SystemExit(f"no {m} model in {a.models}: run bench/serve/make-models.sh first")
    work = tempfile.mkdtemp(prefix="bs-serve-mixed-")
    servers = []
    load_fn = wrk_load if a.client == "wrk" else asyncio_load
    try:
        for i, b in enumerate(a.bin):
            proc, url, hdr, _ = start_server(b, None, work, 1024, ("--precision", a.precision),
                                             models={m: os.path.join(a.models, m) for m in MODELS},
                                             settings={"max_loaded_models": 3}, name=f"server{i}")
            servers.append({"bin": b, "proc": proc, "url": url, "hdr": hdr, "threads_empty": threads(proc.pid)})
        reqsets = {ld: LOADS[ld]() for ld in loads}
        # each kind of request answers 200 on every binary before anything is measured
        for s in servers:
            for ld in loads:
                for path, body in reqsets[ld][:6]:
                    r = post(s["url"], s["hdr"], path, body)
                    if r.status_code != 200:
                        raise SystemExit(f"{s['bin']}: {path}: {r.status_code} {r.text[:300]}")
            loaded = serving(s["url"], s["hdr"])
            s["loaded"] = sorted(f"{m['model_name']} ({m['state']})" for m in loaded.get("models", []))
            s["threads_loaded"] = settle_threads(s["proc"].pid)
            print(f"{s['bin']}: loaded {s['loaded']}; threads with no model {s['threads_empty'][0]}, "
                  f"with three loaded (idle) {s['threads_loaded'][0]}, of which bs-compute "
                  f"{s['threads_loaded'][1]}", flush=True)
        seqs = {}
        for ld in loads:
            for s in reversed(servers):  # the newest binary most likely counts sequences
                seqs[ld] = sequences_per_request(s["url"], s["hdr"], reqsets[ld])
                if seqs[ld] is not None:
                    break
            if seqs[ld] is not None:
                print(f"{ld}: sequences per request {seqs[ld]}", flush=True)
        res = {(ld, i, c): [] for ld in loads for i in range(len(servers)) for c in levels}
        peak = {(ld, i): 0 for ld in loads for i in range(len(servers))}
        durations = {}
        for r in range(a.rounds):
            for ld in loads:
                rate1 = None  # the slowest binary's requests/s at the first level of this load and round
                for li, c in enumerate(levels):
                    durations[(ld, c)] = dur = level_duration(a.duration, a.max_duration, c, rate1)
                    k = (r + li) % len(servers)
                    for i in list(range(k, len(servers))) + list(range(k)):
                        s = servers[i]
                        load_fn(s["url"], s["hdr"], reqsets[ld], c, 2, work)  # warm-up, not counted
                        quiet(s["url"], s["hdr"])
                        before = batching(s["url"], s["hdr"])
                        m = load_fn(s["url"], s["hdr"], reqsets[ld], c, dur, work)
                        if c == levels[0]:
                            rate1 = min(rate1 or float("inf"), m["n"] / m["elapsed"]) or None
                        after = batching(s["url"], s["hdr"])
                        peak[(ld, i)] = max(peak[(ld, i)], threads(s["proc"].pid)[0])
                        m["batches"] = after["batches"] - before["batches"]
                        m["reqs"] = after["batched_requests"] - before["batched_requests"]
                        res[(ld, i, c)].append(m)
                        print(f"round {r + 1} {ld} bin {i + 1} c={c}: {m['n'] / m['elapsed']:.1f} req/s "
                              f"p50 {m['p50'] * 1e3:.0f} ms p99 {m['p99'] * 1e3:.0f} ms, {m['errors']} errors, "
                              f"load {open('/proc/loadavg').read().split()[0]}", file=sys.stderr, flush=True)
        out = {"bins": [s["bin"] for s in servers], "precision": a.precision, "duration": a.duration,
               "rounds": a.rounds, "client": a.client, "loads": {}}
        for ld in loads:
            per_req = statistics.mean(seqs[ld]) if seqs[ld] else None
            rows = []
            print(f"\n{ld}: " + ("sequences per request %.2f" % per_req if per_req else "no sequence counter"))
            print(f"{'bin':>3} {'clients':>7} {'req/s':>7} {'seq/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
                  f"{'req/fwd':>7} {'errors':>6}")
            for i in range(len(servers)):
                for c in levels:
                    ms = res[(ld, i, c)]
                    rps = sum(m["n"] for m in ms) / sum(m["elapsed"] for m in ms)
                    row = {"bin": i, "clients": c, "seconds": durations[(ld, c)], "req_s": rps, "seq_s": rps * per_req if per_req else None,
                           "p50_ms": statistics.median(m["p50"] for m in ms) * 1e3,
                           "p99_ms": statistics.median(m["p99"] for m in ms) * 1e3,
                           "req_per_forward": sum(m["reqs"] for m in ms) / max(1, sum(m["batches"] for m in ms)),
                           "errors": sum(m["errors"] for m in ms)}
                    rows.append(row)
                    print(f"{i + 1:>3} {c:>7} {rps:>7.1f} {row['seq_s'] or float('nan'):>7.1f} "
                          f"{row['p50_ms']:>7.0f} {row['p99_ms']:>7.0f} {row['req_per_forward']:>7.2f} "
                          f"{row['errors']:>6}")
            out["loads"][ld] = {"sequences_per_request": per_req, "rows": rows,
                                "peak_threads": [peak[(ld, i)] for i in range(len(servers))]}
        out["threads"] = [{"no_model": s["threads_empty"][0], "three_loaded": s["threads_loaded"][0],
                           "bs_compute": s["threads_loaded"][1], "loaded": s["loaded"]} for s in servers]
        out["cores"] = os.cpu_count()
        print(f"load average at the end: {open('/proc/loadavg').read().strip()}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        failed = sum(m["errors"] for ms in res.values() for m in ms)
        if failed:
            raise SystemExit(f"{failed} requests failed: the figures above are not valid")
    finally:
        for s in servers:
            stop(s["proc"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
