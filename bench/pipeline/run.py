#!/usr/bin/python3
"""Pipeline throughput: requests/s of `bertstudio run TASK --batch` vs
transformers.js (@huggingface/transformers, onnxruntime-node) on the same
BERT-base-shaped random model, for classification and embeddings.

Both sides get the same requests (one text each, 12-40 random vocabulary
words), run them one at a time with the same number of threads, and are
timed after loading the model and after one warm-up request.

usage: /usr/bin/python3 bench/pipeline/run.py --bin BUILD/bertstudio --tjs DIR --work DIR
       [--requests 200] [--threads 2]
  --tjs DIR   where @huggingface/transformers is installed:
              ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-save --prefix DIR @huggingface/transformers@3
  --work DIR  scratch folder for the models (about 2.2 GB)
"""
import argparse
import json
import os
import random
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def write_requests(path, vocab_path, n, seed=5):
    rng = random.Random(seed)
    with open(vocab_path, encoding="utf-8") as f:
        words = [w for w in f.read().split("\n")[1100:] if w and not w.startswith("##")]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(12, 40))) + "."
            f.write(json.dumps({"text": text}) + "\n")


def time_bertstudio(binary, task, model, requests, threads):
    """Seconds for the requests after load + one warm-up request."""
    with open(requests, encoding="utf-8") as f:
        lines = f.readlines()

    def run(body):
        t = time.monotonic()
        r = subprocess.run([binary, "run", task, "--model", model, "--threads", str(threads), "--batch"],
                           input=body, capture_output=True, text=True, check=True)
        assert r.stdout.count("\n") == body.count("\n"), r.stderr
        return time.monotonic() - t

    base = run(lines[0])  # load + first request
    total = run(lines[0] + "".join(lines))
    return base, total - base


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tjs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    base = os.path.join(a.work, "base")
    if not os.path.exists(os.path.join(base, "model.safetensors")):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "make-model.py"), base], check=True)
    if not os.path.exists(os.path.join(a.work, "emb", "onnx", "model.onnx")):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make-variants.py"), base, a.work], check=True)
    reqs = os.path.join(a.work, "requests.jsonl")
    write_requests(reqs, os.path.join(base, "vocab.txt"), a.requests)
    for task, model in (("classification", "cls"), ("embeddings", "emb")):
        mdir = os.path.join(a.work, model)
        load, secs = time_bertstudio(a.bin, task, mdir, reqs, a.threads)
        print(json.dumps({"engine": "bertstudio", "task": task, "requests": a.requests, "threads": a.threads,
                          "load_s": round(load, 3), "seconds": round(secs, 3),
                          "requests_per_s": round(a.requests / secs, 2)}), flush=True)
        r = subprocess.run(["node", os.path.join(HERE, "peer-transformersjs.mjs"), "--tjs", a.tjs, "--model", mdir,
                            "--task", task, "--requests", reqs, "--threads", str(a.threads)],
                           capture_output=True, text=True, check=True)
        peer = json.loads(r.stdout.strip().splitlines()[-1])
        print(json.dumps(dict(engine="transformers.js", threads=a.threads, **peer)), flush=True)


if __name__ == "__main__":
    main()
