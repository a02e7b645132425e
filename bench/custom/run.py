#!/usr/bin/env python3
"""Custom-task figures (docs/custom-tasks.md): starts a real server on the
fixture models and measures
  1. the overhead of a custom task that calls the classification model,
     against POST /tasks/classification on the same input (medians);
  2. start-to-result time of a trivial custom_function (median);
  3. executions per second of a trivial custom_function (N clients).

  /usr/bin/python3 bench/custom/run.py [--n 200] [--clients 4]
"""
import argparse
import concurrent.futures
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../tests/api"))
os.environ.setdefault("BERTSTUDIO_BIN", os.path.join(HERE, "../../build/bertstudio"))

import requests  # noqa: E402

from conftest import FIXTURES, start_server  # noqa: E402

MODEL = "demo/tiny-bert-classification"
TEXT = "I love this product, it works great"
CLASSIFY = {
    "tokenizer_code": f"tokenizer = AutoTokenizer.from_pretrained('{MODEL}')",
    "model_code": f"model = AutoModelForSequenceClassification.from_pretrained('{MODEL}')",
    "function_code": "def custom_function(text):\n"
                     "    inputs = tokenizer(text, return_tensors='pt')\n"
                     "    outputs = model(**inputs)\n"
                     "    return {'prediction': outputs.logits.softmax(dim=1).tolist()}",
    "input_text": TEXT,
}
TRIVIAL = {"function_code": "def custom_function(text):\n    return text", "input_text": "x"}


def timed(session, url, body, hdr):
    t = time.perf_counter()
    r = session.post(url, json=body, headers=hdr)
    dt = time.perf_counter() - t
    assert r.status_code == 200, r.text
    return dt, r.json()


def median_ms(session, url, body, hdr, n):
    return statistics.median(timed(session, url, body, hdr)[0] for _ in range(n)) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    try:
        secret, _ = srv.create_key(name="bench", permissions=("tasks:execute",),
                                   rate_limits={"requests_per_minute": 10**8,
                                                "requests_per_hour": 10**9,
                                                "custom_tasks_per_hour": 10**9})
        hdr = srv.auth(secret)
        s = requests.Session()
        builtin = {"text": TEXT, "model_name": MODEL, "top_k": None}
        for _ in range(10):  # load the model, warm both paths
            while s.post(srv.url + "/tasks/classification", json=builtin,
                         headers=hdr).status_code == 503:
                time.sleep(0.05)
            timed(s, srv.url + "/tasks/custom", CLASSIFY, hdr)
            timed(s, srv.url + "/tasks/custom", TRIVIAL, hdr)
        b = median_ms(s, srv.url + "/tasks/classification", builtin, hdr, args.n)
        c = median_ms(s, srv.url + "/tasks/custom", CLASSIFY, hdr, args.n)
        print(f"/tasks/classification           median {b:7.2f} ms  (n={args.n})")
        print(f"custom task, same model + input median {c:7.2f} ms  overhead {c - b:6.2f} ms")
        trivial = [timed(s, srv.url + "/tasks/custom", TRIVIAL, hdr) for _ in range(args.n)]
        http = statistics.median(t for t, _ in trivial) * 1000
        inside = [j["data"]["execution_time"] * 1000 for _, j in trivial]
        print(f"trivial custom_function         median {http:7.2f} ms over HTTP, "
              f"{statistics.median(inside):6.2f} ms from job sent to result (execution_time; "
              f"fastest {min(inside):.2f} ms)")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

        def worker(k):
            ss = requests.Session()
            for _ in range(k):
                timed(ss, srv.url + "/tasks/custom", TRIVIAL, hdr)

        per = max(1, args.n // args.clients)
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(worker, [per] * args.clients))
        dt = time.perf_counter() - t
        print(f"trivial custom_function         {per * args.clients / dt:7.1f} executions/s "
              f"({args.clients} clients, {per * args.clients} runs)")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
