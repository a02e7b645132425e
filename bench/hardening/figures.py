"""Figures of the hostile-client review (issue 17), measured against the real
server on 127.0.0.1 with the fixture models: a 3 GiB sparse weight file at
import, a tokenizer whose Replace normalizer multiplies the text, a
backtracking Split regex, and clients rotating over more models than
max_loaded_models. Bounded; run from the repository root:

    /usr/bin/python3 bench/hardening/figures.py

The half-body and download-job figures come from
tests/api/test_body_memory.py and tests/api/test_download_jobs.py (run
them with pytest -s); the connection figures (idle and slow sockets, RSS
under half-bodies, the 64-connection soak) from bench/hardening/connections.py."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, "tests/api")
os.environ.setdefault("BERTSTUDIO_BIN", "build/bertstudio")
from conftest import FIXTURES, start_demo_server
M = os.path.join(FIXTURES, "models")
srv = start_demo_server("figures")  # srv.hdr: a tasks:execute key without a tight limit
tmp = tempfile.mkdtemp()
h = srv.auth()
# 1. sparse 3 GiB weights
d = os.path.join(tmp, "big"); shutil.copytree(os.path.join(M, "tiny-bert-ner"), d)
with open(d + "/model.safetensors", "wb") as f: f.truncate(3 << 30)
t0 = time.monotonic(); r = srv.post("/models/import", headers=h, json={"path": d, "model_name": "big/sparse"})
print("sparse 3GiB import:", r.status_code, f"{(time.monotonic()-t0)*1000:.0f} ms")
# 2. hostile Replace normalizer x100 twice on 1000 'a'
d = os.path.join(tmp, "grow"); shutil.copytree(os.path.join(M, "tiny-bert-embeddings"), d)
t = json.load(open(d + "/tokenizer.json")); g = {"type": "Replace", "pattern": {"String": "a"}, "content": "a" * 100}
t["normalizer"] = {"type": "Sequence", "normalizers": [g, g, g]}; json.dump(t, open(d + "/tokenizer.json", "w"))
srv.post("/models/import", headers=h, json={"path": d, "model_name": "h/grow"})
for _ in range(200):
    t0 = time.monotonic(); r = srv.post("/tokenize", headers=srv.hdr, json={"model_name": "h/grow", "text": "a" * 100000})
    if r.status_code != 503: break
    time.sleep(0.05)
print("Replace x100 x3 on 100k chars:", r.status_code, f"{(time.monotonic()-t0)*1000:.0f} ms")
# 3. catastrophic regex
d = os.path.join(tmp, "rx"); shutil.copytree(os.path.join(M, "tiny-bert-embeddings"), d)
t = json.load(open(d + "/tokenizer.json")); t["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
json.dump(t, open(d + "/tokenizer.json", "w"))
srv.post("/models/import", headers=h, json={"path": d, "model_name": "h/rx"})
for _ in range(200):
    t0 = time.monotonic(); r = srv.post("/tokenize", headers=srv.hdr, json={"model_name": "h/rx", "text": "a" * 5000 + "b"})
    if r.status_code != 503: break
    time.sleep(0.05)
print("catastrophic regex on 5001 chars:", r.status_code, f"{(time.monotonic()-t0)*1000:.0f} ms")
# 4. LRU rotation: 3 clients x 3 models, capacity 1, 10 requests each
srv.request("PUT", "/settings/max_loaded_models", json={"value": 1}, headers=h)
names = ["demo/tiny-bert-embeddings", "demo/tiny-bert-ner", "demo/tiny-bert-qa"]
stats = {}
def client(n):
    busy = ok = 0
    for _ in range(10):
        while True:
            r = srv.post("/tasks/embeddings", headers=srv.hdr, json={"model_name": n, "text": "a"})
            if r.status_code == 200: ok += 1; break
            busy += 1
            while srv.get(f"/models/{n}/info", headers=srv.hdr).json()["data"]["state"] != "loaded": time.sleep(0.02)
    stats[n] = (ok, busy)
t0 = time.monotonic()
ts = [threading.Thread(target=client, args=(n,)) for n in names]
[t.start() for t in ts]; [t.join() for t in ts]
print("rotation 3 clients x 10 requests over 3 models, capacity 1:", stats, f"{time.monotonic()-t0:.1f} s")
srv.stop(); shutil.rmtree(tmp)
