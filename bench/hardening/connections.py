"""Connection figures of the hostile-client review (issue 17 H1, M1), measured
against the real server on 127.0.0.1 with the fixture models. Bounded; run
from the repository root:

    /usr/bin/python3 bench/hardening/connections.py attack     # idle + slow sockets, /health latency
    /usr/bin/python3 bench/hardening/connections.py half-body  # RSS under 9 MB half-bodies
    /usr/bin/python3 bench/hardening/connections.py soak [MINUTES]  # 64 keep-alive connections

attack: 1,100 idle sockets and 1,030 sending a header byte every 2 s, all
held; /health (a new connection each time) and an authenticated
classification are timed for 30 s: p50/p99.
half-body: 400 connections without credentials each announce 9 MB and send
2 MB of it (the issue's attack: +3.7 GB RSS before), then 200 with a valid
key (their bodies are read: max_body_memory_bytes bounds them).
soak: 64 keep-alive connections for MINUTES (default 10) on a mix of
/health, classification, embeddings, /tokenize and a 404 (an unknown
model, expected): requests served, unexpected answers, RSS at start and end.
"""
import asyncio
import json
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, "tests/api")
os.environ.setdefault("BERTSTUDIO_BIN", "build/bertstudio")
from conftest import start_demo_server  # noqa: E402

TASK = {"text": "a fine day", "model_name": "demo/tiny-bert-classification"}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return -1


def warm(srv):
    for body, path in ((TASK, "/tasks/classification"),
                       ({"text": "a", "model_name": "demo/tiny-bert-embeddings"}, "/tasks/embeddings")):
        for _ in range(600):
            r = srv.post(path, json=body, headers=srv.hdr)
            if r.status_code != 503:
                break
            time.sleep(0.05)
        assert r.status_code == 200, r.text


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def attack(srv):
    import requests
    h = srv.auth()
    for k, v in (("header_timeout_seconds", 300), ("max_connections_per_ip", 100000)):
        srv.request("PUT", f"/settings/{k}", json={"value": v}, headers=h)
    socks, slow, stop = [], [], threading.Event()
    for _ in range(1100):
        socks.append(socket.create_connection(("127.0.0.1", srv.port)))
    for _ in range(1030):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)

    def trickle():
        while not stop.wait(2):
            for s in slow:
                try:
                    s.send(b"a")
                except OSError:
                    pass
    threading.Thread(target=trickle, daemon=True).start()
    time.sleep(2)  # let every socket be accepted before measuring
    held = [l for l in srv.get("/metrics", headers=h).text.splitlines()
            if l.startswith("bertstudio_connections_open ")]
    health, task, fails = [], [], 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            ok = requests.get(srv.url + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        health.append(time.monotonic() - t0)
        t0 = time.monotonic()
        try:
            ok = ok and requests.post(srv.url + "/tasks/classification", json=TASK, headers=srv.hdr,
                                      timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        task.append(time.monotonic() - t0)
        fails += not ok
    stop.set()
    print(f"attack: {held[0] if held else '?'} (1,100 idle + 1,030 slow + ours); "
          f"{len(health)} rounds in 30 s, {fails} failed")
    print(f"  /health p50 {pct(health, 50):.1f} ms p99 {pct(health, 99):.1f} ms max {max(health) * 1000:.1f} ms")
    print(f"  classification p50 {pct(task, 50):.1f} ms p99 {pct(task, 99):.1f} ms max {max(task) * 1000:.1f} ms")
    for s in socks + slow:
        s.close()


def half_body(srv):
    pid = srv.proc.pid

    def run(n, auth):
        out = [None] * n

        def one(i):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            s.sendall(b"POST /api-keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth +
                      b"Content-Length: 9437184\r\n\r\n")
            sent, chunk = 0, b"x" * 65536
            try:
                while sent < (2 << 20):
                    sent += s.send(chunk)
            except OSError:
                pass
            out[i] = s
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        time.sleep(1)  # the server reads what is in flight
        return out
    before = rss_mb(pid)
    socks = run(400, b"")
    print(f"half-body: 400 unauthenticated 9 MB half-bodies (2 MB sent each): RSS {before:.0f} -> "
          f"{rss_mb(pid):.0f} MB")
    [s.close() for s in socks]
    time.sleep(1)
    before = rss_mb(pid)
    socks = run(200, b"Authorization: Bearer " + srv.admin_key.encode() + b"\r\n")
    print(f"half-body: 200 authenticated 9 MB half-bodies (2 MB sent each, 256 MiB cap): RSS "
          f"{before:.0f} -> {rss_mb(pid):.0f} MB")
    [s.close() for s in socks]


MIX = [
    ("GET", "/health", None, 200),
    ("POST", "/tasks/classification", TASK, 200),
    ("POST", "/tasks/embeddings", {"text": "the soak goes on", "model_name": "demo/tiny-bert-embeddings"}, 200),
    ("POST", "/tokenize", {"text": "tokens all day", "model_name": "demo/tiny-bert-embeddings"}, 200),
    ("POST", "/tasks/classification", {"text": "x", "model_name": "nobody/no-such-model"}, 404),
]


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = chunked = None
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
        elif k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            n = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(n + 2)
            if n == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def soak_conn(srv, i, end, stats):
    auth = srv.hdr["Authorization"].encode()
    reqs = []
    for method, path, body, want in MIX:
        data = json.dumps(body).encode() if body else b""
        reqs.append((b"%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (method.encode(), path.encode(), auth, len(data), data),
                     want))
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    k = i
    while time.monotonic() < end:
        raw, want = reqs[k % len(reqs)]
        k += 1
        try:
            writer.write(raw)
            status = await read_answer(reader)
        except (OSError, asyncio.IncompleteReadError) as e:
            stats["errors"] += 1
            stats["why"][repr(e)[:60]] = stats["why"].get(repr(e)[:60], 0) + 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            stats["reconnects"] += 1
            continue
        stats["served"] += 1
        if status != want:
            stats["errors"] += 1
            stats["why"][status] = stats["why"].get(status, 0) + 1
    writer.close()


async def soak_run(srv, seconds, stats):
    end = time.monotonic() + seconds
    pid = srv.proc.pid

    async def sample():
        while time.monotonic() < end:
            await asyncio.sleep(min(60, max(1, end - time.monotonic())))
            stats["rss"].append(rss_mb(pid))
            print(f"  {stats['served']} served, {stats['errors']} errors, RSS {stats['rss'][-1]:.0f} MB",
                  flush=True)
    await asyncio.gather(sample(), *(soak_conn(srv, i, end, stats) for i in range(64)))


def soak(srv, minutes):
    pid = srv.proc.pid
    stats = {"served": 0, "errors": 0, "reconnects": 0, "why": {}, "rss": []}
    # A short warm-up (pools, caches) before RSS at start is read.
    asyncio.run(soak_run(srv, 5, {"served": 0, "errors": 0, "reconnects": 0, "why": {}, "rss": []}))
    start = rss_mb(pid)
    t0 = time.monotonic()
    asyncio.run(soak_run(srv, minutes * 60, stats))
    took = time.monotonic() - t0
    print(f"soak: 64 keep-alive connections x {minutes} min: {stats['served']} requests "
          f"({stats['served'] / took:.0f}/s), {stats['errors']} errors {stats['why']}, "
          f"{stats['reconnects']} reconnects; RSS {start:.0f} MB at start, {rss_mb(pid):.0f} MB at end "
          f"(samples {[round(x) for x in stats['rss']]})")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "attack"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    srv = start_demo_server("connections-figures")
    try:
        warm(srv)
        if what == "attack":
            attack(srv)
        elif what == "half-body":
            half_body(srv)
        elif what == "soak":
            soak(srv, float(sys.argv[2]) if len(sys.argv) > 2 else 10)
        else:
            sys.exit(f"unknown figure {what!r}: attack, half-body or soak")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
