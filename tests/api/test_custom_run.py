"""Custom tasks run in the sandbox (POST /tasks/custom, and the original
product's /custom-task and /custom-task/batch): the seed's example on a
fixture model agrees with /tasks/classification, the shims reach the
engine (tokenizer, model, pipeline, torch ops), every escape attempt is
refused with its own sentence, limits hold under load, and the server stays
healthy throughout."""
import concurrent.futures
import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, FIXTURES, start_server

SEED_TOKENIZER = "tokenizer = AutoTokenizer.from_pretrained('distilbert-base-uncased')"
SEED_MODEL = "model = AutoModelForSequenceClassification.from_pretrained('distilbert-base-uncased')"
SEED_FUNCTION = (
    "def custom_function(text):\n"
    "    inputs = tokenizer(text, return_tensors='pt')\n"
    "    outputs = model(**inputs)\n"
    "    return {'prediction': outputs.logits.softmax(dim=1).tolist()}"
)
PUBLIC_TASK_ID = "a1b2c3d4e5f60718293a4b5c"
TIMEOUT_S = 2


@pytest.fixture(scope="module")
def csrv():
    # A saved public task, imported into the store before the server starts.
    data_dir = tempfile.mkdtemp(prefix="bs-custom-")
    dump = tempfile.mkdtemp(prefix="bs-custom-dump-")
    with open(os.path.join(dump, "custom_tasks.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({
            "_id": PUBLIC_TASK_ID, "name": "Length", "description": "", "tags": [],
            "model_name": "demo/tiny-bert-classification", "tokenizer_code": "tokenizer = None",
            "model_code": "model = None", "is_public": True, "created_by": "seed", "usage_count": 0,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "function_code": "def custom_function(text):\n    return {'n': len(text), 'm': model_id}",
        }) + "\n")
    subprocess.run([BIN, "db", "import", dump, "--data-dir", data_dir], check=True,
                   capture_output=True)
    srv = start_server(data_dir=data_dir,
                       env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    secret, _ = srv.create_key(name="custom-tests", permissions=("tasks:execute",),
                               rate_limits={"requests_per_minute": 1000000,
                                            "requests_per_hour": 100000000,
                                            "custom_tasks_per_hour": 1000000})
    srv.hdr = srv.auth(secret)
    # The seed's example names distilbert-base-uncased: the fixture model
    # is imported under that name, so the code runs unchanged.
    r = srv.post("/models/import", headers=srv.auth(), json={
        "path": os.path.join(FIXTURES, "models", "tiny-bert-classification"),
        "model_name": "distilbert-base-uncased"})
    assert r.status_code in (200, 201, 202), r.text
    r = srv.request("PUT", "/settings/custom_task_timeout_seconds", headers=srv.auth(),
                    json={"value": TIMEOUT_S})
    assert r.status_code == 200, r.text
    yield srv
    srv.stop()


def call(srv, path, body, headers=None, deadline_s=60):
    """POST, honouring 503 + Retry-After while a model loads."""
    end = time.monotonic() + deadline_s
    while True:
        r = srv.post(path, json=body, headers=headers or srv.hdr)
        if r.status_code != 503 or "Custom task" in r.text or time.monotonic() > end:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")) / 10)


def run(srv, function_code, input_text="hello", **extra):
    body = {"tokenizer_code": extra.pop("tokenizer_code", "tokenizer = None"),
            "model_code": extra.pop("model_code", "model = None"),
            "function_code": function_code, "input_text": input_text}
    body.update(extra)
    return call(srv, "/tasks/custom", body)


def healthy(srv):
    r = srv.get("/health")
    assert r.status_code == 200, r.text
    r = call(srv, "/tasks/classification", {"text": "ok", "model_name": "demo/tiny-bert-classification"})
    assert r.status_code == 200, r.text


def labels_of(folder):
    with open(os.path.join(FIXTURES, "models", folder, "config.json"), encoding="utf-8") as f:
        id2label = json.load(f)["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def test_seed_example_matches_classification(csrv):
    text = "I love this product, it works great"
    r = call(csrv, "/tasks/custom", {"tokenizer_code": SEED_TOKENIZER, "model_code": SEED_MODEL,
                                     "function_code": SEED_FUNCTION, "input_text": text})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    probs = data["result"]["prediction"][0]
    assert data["execution_time"] > 0
    r = call(csrv, "/tasks/classification",
             {"text": text, "model_name": "distilbert-base-uncased", "top_k": None})
    assert r.status_code == 200, r.text
    by_label = {x["label"]: x["score"] for x in r.json()["data"]["results"][0]}
    labels = labels_of("tiny-bert-classification")
    assert len(probs) == len(labels)
    for label, p in zip(labels, probs):
        assert abs(p - by_label[label]) < 1e-6, (label, p, by_label[label])


def test_model_forward_queues_in_the_batcher(csrv):
    """model(**inputs) in a custom task is one more forward of the model's
    batcher (counted under the route "other"), not a pass of its own."""
    def batching():
        r = csrv.get("/stats/serving", headers=csrv.hdr)
        assert r.status_code == 200, r.text
        return r.json()["batching"]
    before = batching()
    r = call(csrv, "/tasks/custom", {"tokenizer_code": SEED_TOKENIZER, "model_code": SEED_MODEL,
                                     "function_code": SEED_FUNCTION, "input_text": "queued"})
    assert r.status_code == 200, r.text
    after = batching()
    assert after["route_sequences"]["other"] == before["route_sequences"]["other"] + 1
    assert after["unbatched_requests"] == before["unbatched_requests"]  # none ran directly


def test_original_routes_keep_their_shapes(csrv):
    body = {"tokenizer_code": SEED_TOKENIZER, "model_code": SEED_MODEL,
            "function_code": SEED_FUNCTION, "input_text": "fine", "model_id": "distilbert-base-uncased"}
    r = call(csrv, "/custom-task", body)
    assert r.status_code == 200, r.text
    assert r.json()["error"] is None
    assert abs(sum(r.json()["result"]["prediction"][0]) - 1) < 1e-5
    r = call(csrv, "/custom-task", dict(body, function_code="def custom_function(text):\n    return 1/0"))
    assert r.status_code == 200, r.text
    assert r.json()["result"] is None
    assert "ZeroDivisionError" in r.json()["error"]
    batch = dict(body, input_texts=["a", "bb", "ccc"],
                 function_code="def custom_function(texts):\n    return [len(t) for t in texts]")
    del batch["input_text"]
    r = call(csrv, "/custom-task/batch", batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [1, 2, 3], "errors": [None, None, None]}
    r = call(csrv, "/custom-task/batch", dict(batch, function_code="def custom_function(texts):\n    return 5"))
    assert r.json()["results"] == [None, None, None]
    assert all("must return a list" in e for e in r.json()["errors"])


def test_model_id_is_injected(csrv):
    r = run(csrv, "def custom_function(text):\n    return model_id", model_id="demo/x")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["result"] == "demo/x"


def test_batch_mode_with_the_model(csrv):
    code = ("def custom_function(texts):\n"
            "    enc = tokenizer(texts, padding=True, truncation=True, return_tensors='pt')\n"
            "    with torch.no_grad():\n"
            "        logits = model(**enc).logits\n"
            "    ids = logits.argmax(dim=-1).tolist()\n"
            "    return [model.config.id2label[i] for i in ids]\n")
    texts = ["great", "awful and slow, really terrible", "it is a thing"]
    r = call(csrv, "/tasks/custom", {
        "tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained(model_id)",
        "model_code": "model = AutoModelForSequenceClassification.from_pretrained(model_id)",
        "function_code": code, "input_texts": texts, "model_id": "demo/tiny-bert-classification"})
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    r = call(csrv, "/tasks/classification", {"text": texts, "model_name": "demo/tiny-bert-classification"})
    want = [res[0]["label"] for res in r.json()["data"]["results"]]
    assert got == want


def test_pipeline_ner_matches_the_ner_task(csrv):
    text = "John Smith lives in Paris"
    r = run(csrv, "ner = pipeline('ner', model='demo/tiny-bert-ner', aggregation_strategy='simple')\n"
                  "def custom_function(text):\n    return ner(text)\n", text)
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    r = call(csrv, "/tasks/ner", {"text": text, "model_name": "demo/tiny-bert-ner",
                                  "aggregation_strategy": "simple"})
    assert got == r.json()["data"]["results"][0]


def test_cosine_similarity_of_embeddings(csrv):
    code = (
        "import torch.nn.functional as F\n"
        "def embed(text):\n"
        "    enc = tokenizer(text, return_tensors='pt')\n"
        "    h = model(**enc).last_hidden_state\n"
        "    m = enc['attention_mask'].unsqueeze(-1).float()\n"
        "    return (h * m).sum(dim=1) / m.sum(dim=1)\n"
        "def custom_function(text):\n"
        "    a, b = text.split('|')\n"
        "    return F.cosine_similarity(embed(a), embed(b)).item()\n")
    r = call(csrv, "/tasks/custom", {
        "tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained('demo/tiny-bert-embeddings')",
        "model_code": "model = AutoModel.from_pretrained('demo/tiny-bert-embeddings')",
        "function_code": code, "input_text": "the cat sat on the mat|a dog ran in the park"})
    assert r.status_code == 200, r.text
    cos = r.json()["data"]["result"]
    r = call(csrv, "/tasks/embeddings", {"text": ["the cat sat on the mat", "a dog ran in the park"],
                                         "model_name": "demo/tiny-bert-embeddings",
                                         "pooling": "mean", "normalize": True})
    assert r.status_code == 200, r.text
    a, b = r.json()["data"]["embeddings"]
    assert abs(cos - sum(x * y for x, y in zip(a, b))) < 1e-4


ESCAPES = [
    ("import os\ndef custom_function(text):\n    return os.system('id')", "tried to start a process"),
    ("def custom_function(text):\n    return __import__('o'+'s').fork()", "tried to start a process"),
    ("import subprocess\ndef custom_function(text):\n    return 1", "module 'subprocess' is not available"),
    ("import ctypes\ndef custom_function(text):\n    return 1", "module 'ctypes' is not available"),
    ("def custom_function(text):\n    return open('/etc/passwd').read()", "may not open files"),
    ("import os\ndef custom_function(text):\n    return os.read(os.open('/etc/passwd', 0), 100)",
     "Permission denied"),
    ("import os\ndef custom_function(text):\n    return dict(os.environ) or 'empty'", None),
    ("import os\ndef custom_function(text):\n    os.open('/tmp/bs-owned', os.O_WRONLY | os.O_CREAT)",
     "tried to open a file for writing"),
    ("import os\ndef custom_function(text):\n    while True: os.fork()", "tried to start a process"),
    ("def custom_function(text):\n    return ' ' * 10**10", "memory limit (512 MB)"),
    ("def custom_function(text):\n    return len([0] * 10**9)", "memory limit"),
    ("def custom_function(text):\n    while True: pass", f"exceeded {TIMEOUT_S} s wall time"),
    ("def f(n):\n    return f(n + 1)\ndef custom_function(text):\n    return f(0)", "recursion"),
    ("def custom_function(text):\n    return {1, 2}", "not JSON-serialisable"),
    ("def custom_function(text):\n    x = 1\n    return x +\n", "function_code line 3"),
    ("m = AutoModel.from_pretrained('nobody/not-here')\ndef custom_function(text):\n    return 1",
     "model 'nobody/not-here' is not in the model cache"),
    ("import torch\ndef custom_function(text):\n    return torch.fft.fft(1)",
     "not supported by BERT Studio's torch shim: torch.fft"),
]


@pytest.mark.parametrize("code,needle", ESCAPES, ids=[e[1] or "environment" for e in ESCAPES])
def test_escape_is_refused(csrv, code, needle):
    r = run(csrv, code)
    if needle is None:  # the environment is empty: nothing to read
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"] == "empty"
    else:
        assert r.status_code == 422, r.text
        assert needle in r.json()["detail"], r.json()
    healthy(csrv)


def test_socket_to_own_port_is_refused(csrv):
    code = ("import socket\ndef custom_function(text):\n"
            f"    return str(socket.create_connection(('127.0.0.1', {csrv.port})))")
    r = run(csrv, code)
    assert r.status_code == 422, r.text
    assert "custom task tried to open a network connection" in r.json()["detail"]
    healthy(csrv)


def test_reading_the_store_is_refused(csrv):
    db = os.path.join(csrv.data_dir, "bertstudio.db")
    assert os.path.exists(db)
    code = ("import os\ndef custom_function(text):\n"
            f"    return os.read(os.open({db!r}, os.O_RDONLY), 16).hex()")
    r = run(csrv, code)
    assert r.status_code == 422, r.text
    assert "Permission denied" in r.json()["detail"]


def test_output_cap(csrv):
    r = csrv.request("PUT", "/settings/custom_task_max_output_bytes", headers=csrv.auth(),
                     json={"value": 4096})
    assert r.status_code == 200, r.text
    try:
        r = run(csrv, "def custom_function(text):\n    return 'x' * 5000")
        assert r.status_code == 422, r.text
        assert "output exceeded the 4096 byte limit" in r.json()["detail"]
    finally:
        csrv.request("PUT", "/settings/custom_task_max_output_bytes", headers=csrv.auth(),
                     json={"value": 1048576})


def test_saved_task_runs_and_counts(csrv):
    before = csrv.get("/logs?task_type=custom", headers=csrv.auth()).json()["data"]
    r = call(csrv, "/tasks/custom", {"task_id": PUBLIC_TASK_ID, "input_text": "four"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["result"] == {"n": 4, "m": "demo/tiny-bert-classification"}
    assert r.json()["data"]["task_id"] == PUBLIC_TASK_ID
    r = call(csrv, "/tasks/custom", {"task_id": "ffffffffffffffffffffffff", "input_text": "x"})
    assert r.status_code == 404, r.text
    r = call(csrv, "/tasks/custom", {"task_id": PUBLIC_TASK_ID, "input_text": "x",
                                     "function_code": "def custom_function(t):\n    return 1"})
    assert r.status_code == 400, r.text
    logs = csrv.get("/logs?task_type=custom", headers=csrv.auth()).json()["data"]
    items = logs["logs"] if isinstance(logs, dict) else logs
    olds = before["logs"] if isinstance(before, dict) else before
    assert any(x.get("task_id") == PUBLIC_TASK_ID for x in items), items[:3]
    assert len(items) > len(olds)


def test_bad_bodies(csrv):
    r = csrv.post("/tasks/custom", json={"input_text": "x"}, headers=csrv.hdr)
    assert r.status_code == 400 and "function_code" in r.json()["detail"]
    r = csrv.post("/tasks/custom", json={"function_code": "x", "input_text": 5}, headers=csrv.hdr)
    assert r.status_code == 400 and "input_text" in r.json()["detail"]
    r = csrv.post("/custom-task", json={"function_code": "x"}, headers=csrv.hdr)
    assert r.status_code == 400
    r = csrv.post("/tasks/custom", json={"function_code": "x", "input_text": "x"})
    assert r.status_code == 401


def test_twenty_long_tasks_hold_their_limits(csrv):
    """20 spinning tasks at once: each is killed at its wall time, and the
    server answers other requests meanwhile."""
    spin = "def custom_function(text):\n    while True: pass"
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        t0 = time.monotonic()
        futs = [pool.submit(run, csrv, spin) for _ in range(20)]
        time.sleep(0.3)  # let the spinners start before measuring the others
        t1 = time.monotonic()
        healthy(csrv)
        r = run(csrv, "def custom_function(text):\n    return text[::-1]", "abc")
        others = time.monotonic() - t1
        assert r.status_code == 200, r.text
        assert r.json()["data"]["result"] == "cba"
        results = [f.result() for f in futs]
        total = time.monotonic() - t0
    for r in results:
        assert r.status_code == 422, r.text
        assert "exceeded" in r.json()["detail"] and ("wall time" in r.json()["detail"]
                                                     or "CPU time" in r.json()["detail"])
    assert others < TIMEOUT_S + 3, others
    assert total < TIMEOUT_S + 8, total
    healthy(csrv)


def test_custom_task_rate_limit(csrv):
    secret, _ = csrv.create_key(name="custom-limited", permissions=("tasks:execute",),
                                rate_limits={"requests_per_minute": 1000, "requests_per_hour": 1000,
                                             "custom_tasks_per_hour": 2})
    body = {"function_code": "def custom_function(t):\n    return 1", "input_text": "x"}
    codes = [csrv.post("/tasks/custom", json=body, headers=csrv.auth(secret)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


def test_without_the_worker_answers_503():
    srv = start_server(env={"BERTSTUDIO_SANDBOX": "/nonexistent/bertstudio-sandbox"})
    try:
        r = srv.post("/tasks/custom", headers=srv.auth(),
                     json={"function_code": "def custom_function(t):\n    return 1", "input_text": "x"})
        assert r.status_code == 503, r.text
        assert "/nonexistent/bertstudio-sandbox" in r.json()["detail"]
        r = srv.post("/custom-task", headers=srv.auth(), json={
            "tokenizer_code": "", "model_code": "", "function_code": "", "input_text": "x",
            "model_id": "m"})
        assert r.status_code == 503, r.text
        assert srv.get("/health").status_code == 200
    finally:
        srv.stop()


def test_tokenizer_subset_matches_tokenize(csrv):
    code = (
        "tok = AutoTokenizer.from_pretrained('demo/tiny-bert-classification')\n"
        "def custom_function(text):\n"
        "    a, b = text.split('|')\n"
        "    enc = tok(a, b, return_offsets_mapping=True)\n"
        "    batch = tok([a, b], padding=True, truncation=True, max_length=6, return_tensors='pt')\n"
        "    ids = batch['input_ids']\n"
        "    return {'ids': enc['input_ids'], 'types': enc['token_type_ids'],\n"
        "            'offsets': [list(o) for o in enc['offset_mapping']],\n"
        "            'shape': list(ids.shape), 'mask': batch.attention_mask.tolist(),\n"
        "            'tokens': tok.convert_ids_to_tokens(enc['input_ids']),\n"
        "            'first': tok.convert_ids_to_tokens(int(ids[0][1])),\n"
        "            'decoded': tok.decode(enc['input_ids'], skip_special_tokens=True),\n"
        "            'batch_decoded': tok.batch_decode(ids, skip_special_tokens=True)}\n")
    a, b = "Hello world, fine day", "short one"
    r = run(csrv, code, f"{a}|{b}")
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    r = call(csrv, "/tokenize", {"text": a, "text_pair": b, "model_name": "demo/tiny-bert-classification"})
    want = r.json()["data"]["results"][0]
    assert got["ids"] == want["input_ids"]
    assert got["types"] == want["token_type_ids"]
    assert got["offsets"] == want["offsets"]
    assert got["tokens"] == want["tokens"]
    assert got["first"] == want["tokens"][1]
    assert got["shape"][0] == 2 and got["shape"][1] <= 6
    assert got["mask"][1][-1] in (0, 1) and all(got["mask"][0])
    r = call(csrv, "/tokenize", {"text": [a, b], "model_name": "demo/tiny-bert-classification",
                                 "max_length": 6})
    lens = [len(x["input_ids"]) for x in r.json()["data"]["results"]]
    assert got["shape"][1] == max(lens)
    assert [sum(m) for m in got["mask"]] == lens
    assert isinstance(got["decoded"], str) and got["decoded"]
    assert len(got["batch_decoded"]) == 2


def test_masked_lm_logits_agree_with_fill_mask(csrv):
    code = (
        "tok = AutoTokenizer.from_pretrained('demo/tiny-bert-mlm')\n"
        "mlm = AutoModelForMaskedLM.from_pretrained('demo/tiny-bert-mlm')\n"
        "def custom_function(text):\n"
        "    enc = tok(text, return_tensors='pt')\n"
        "    logits = mlm(**enc).logits\n"
        "    pos = enc['input_ids'][0].tolist().index(tok.mask_token_id)\n"
        "    top = torch.topk(logits[0, pos].softmax(dim=-1), 3)\n"
        "    return {'ids': top.indices.tolist(), 'scores': top.values.tolist(),\n"
        "            'shape': list(logits.shape)}\n")
    r = call(csrv, "/tasks/fill-mask", {"text": "the cat [MASK] on the mat", "model_name": "demo/tiny-bert-mlm",
                                        "top_k": 3})
    assert r.status_code == 200, r.text
    want = r.json()["data"]["results"][0]
    r = run(csrv, code, "the cat [MASK] on the mat")
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    assert got["ids"] == [w["token"] for w in want]
    for g, w in zip(got["scores"], want):
        assert abs(g - w["score"]) < 1e-5


def test_qa_and_features_pipelines(csrv):
    q, c = "Where does John live?", "John lives in Paris and works in Berlin."
    code = ("qa = pipeline('question-answering', model='demo/tiny-bert-qa')\n"
            "fe = pipeline('feature-extraction', model='demo/tiny-bert-qa')\n"
            "m = AutoModelForQuestionAnswering.from_pretrained('demo/tiny-bert-qa')\n"
            "t = AutoTokenizer.from_pretrained('demo/tiny-bert-qa')\n"
            "def custom_function(text):\n"
            "    q, c = text.split('|')\n"
            "    out = m(**t(q, c, return_tensors='pt'))\n"
            "    return {'qa': qa(question=q, context=c), 'features': fe(c),\n"
            "            'start': list(out.start_logits.shape), 'end': list(out.end_logits.shape)}\n")
    r = run(csrv, code, f"{q}|{c}")
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    r = call(csrv, "/tasks/qa", {"question": q, "context": c, "model_name": "demo/tiny-bert-qa"})
    assert got["qa"] == r.json()["data"]["results"][0]
    r = call(csrv, "/tasks/features", {"text": c, "model_name": "demo/tiny-bert-qa"})
    want = r.json()["data"]["features"][0]
    assert len(got["features"][0]) == len(want)
    assert max(abs(x - y) for x, y in zip(got["features"][0][1], want[1])) < 1e-5
    assert got["start"] == got["end"] and got["start"][0] == 1


def test_bart_generate_matches_summarization(csrv):
    text = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."
    code = ("tok = AutoTokenizer.from_pretrained('demo/tiny-bart')\n"
            "m = AutoModelForSeq2SeqLM.from_pretrained('demo/tiny-bart')\n"
            "def custom_function(text):\n"
            "    enc = tok(text, return_tensors='pt')\n"
            "    ids = m.generate(enc['input_ids'], max_length=12, num_beams=2)\n"
            "    return tok.decode(ids[0], skip_special_tokens=True)\n")
    r = run(csrv, code, text)
    assert r.status_code == 200, r.text
    got = r.json()["data"]["result"]
    r = call(csrv, "/tasks/summarization", {"text": text, "model_name": "demo/tiny-bart",
                                            "max_length": 12, "num_beams": 2})
    assert r.status_code == 200, r.text
    assert got.strip() == r.json()["data"]["results"][0]["summary_text"].strip()


def worker_pids(srv):
    """The bertstudio-sandbox processes whose parent is srv's server."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")[0]
        except OSError:
            continue
        if int(fields[1]) == srv.proc.pid and cmd.endswith(b"bertstudio-sandbox"):
            pids.append(int(d))
    return pids


def test_a_dead_worker_is_restarted(csrv):
    r = run(csrv, "def custom_function(text):\n    return 1")
    assert r.status_code == 200, r.text
    pids = worker_pids(csrv)
    assert len(pids) == 1, pids
    os.kill(pids[0], 9)
    r = run(csrv, "def custom_function(text):\n    return 2")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["result"] == 2
    assert worker_pids(csrv) not in ([], pids)


def test_the_worker_stops_with_the_server():
    srv = start_server()
    try:
        r = srv.post("/tasks/custom", headers=srv.auth(),
                     json={"function_code": "def custom_function(t):\n    return t", "input_text": "x"})
        assert r.status_code == 200, r.text
        pids = worker_pids(srv)
        assert len(pids) == 1
    finally:
        assert srv.stop() == 0
    assert not os.path.exists(f"/proc/{pids[0]}")


def saver(srv, name):
    secret, _ = srv.create_key(name=name, permissions=("tasks:execute", "tasks:save"),
                               rate_limits={"requests_per_minute": 100000, "requests_per_hour": 100000,
                                            "custom_tasks_per_hour": 100000})
    return srv.auth(secret)


def saved(name, function_code, **fields):
    t = {"name": name, "model_name": "demo/tiny-bert-classification",
         "tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained(model_id)",
         "model_code": "model = AutoModelForSequenceClassification.from_pretrained(model_id)",
         "function_code": function_code}
    t.update(fields)
    return t


def test_saving_compiles_the_code(csrv):
    hdr = saver(csrv, "check-save")
    r = csrv.post("/custom-tasks", headers=hdr,
                  json=saved("syntax", "def custom_function(text):\n    return (1 +\n"))
    assert r.status_code == 400, r.text
    assert "function_code line 2" in r.json()["detail"], r.json()
    r = csrv.post("/custom-tasks", headers=hdr, json=saved("no function", "def other(text):\n    return 1\n"))
    assert r.status_code == 400, r.text
    assert "custom_function" in r.json()["detail"]
    r = csrv.post("/custom-tasks", headers=hdr,
                  json=saved("bad model code", "def custom_function(t):\n    return t",
                             model_code="model = (\n"))
    assert r.status_code == 400 and "model_code line 1" in r.json()["detail"], r.text
    good = saved("labels", "def custom_function(text):\n"
                           "    out = model(**tokenizer(text, return_tensors='pt'))\n"
                           "    return model.config.id2label[int(out.logits.argmax(dim=-1)[0])]\n")
    r = csrv.post("/custom-tasks", headers=hdr, json=good)
    assert r.status_code == 201, r.text
    task_id = r.json()["data"]["_id"]
    # An update is checked too, and the saved task runs and is counted.
    r = csrv.request("PUT", f"/custom-tasks/{task_id}", headers=hdr,
                     json={"function_code": "def custom_function(t)\n    return 1"})
    assert r.status_code == 400 and "function_code line 1" in r.json()["detail"], r.text
    for _ in range(2):
        r = call(csrv, "/tasks/custom", {"task_id": task_id, "input_text": "good stuff"}, headers=hdr)
        assert r.status_code == 200, r.text
    want = call(csrv, "/tasks/classification", {"text": "good stuff",
                                                "model_name": "demo/tiny-bert-classification"})
    assert r.json()["data"]["result"] == want.json()["data"]["results"][0][0]["label"]
    doc = csrv.get(f"/custom-tasks/{task_id}", headers=hdr).json()["data"]
    assert doc["usage_count"] == 2
    assert doc["execution_stats"]["total_executions"] == 2
    assert doc["execution_stats"]["success_rate"] == 1


def test_import_compiles_every_task(csrv):
    hdr = saver(csrv, "check-import")
    tasks = [saved("fine", "def custom_function(t):\n    return t"),
             saved("broken", "def custom_function(t):\n  return [\n")]
    r = csrv.post("/custom-tasks/import", headers=hdr,
                  json={"format": "bertstudio.custom_tasks", "version": 1, "tasks": tasks})
    assert r.status_code == 400, r.text
    assert "tasks[1]" in r.json()["detail"] and "function_code line 2" in r.json()["detail"], r.text


def test_models_are_shared_and_counted(csrv):
    """A model a custom task uses is the registry's: loaded once, listed as
    loaded, and its model_cache access_count grows with the task's calls."""
    name = "demo/tiny-electra-ner"
    before = csrv.get(f"/models/{name}/info", headers=csrv.auth()).json()["data"]["access_count"]
    r = run(csrv, f"p = pipeline('ner', model='{name}')\n"
                  "def custom_function(text):\n    return len(p(text))", "Alice in Paris")
    assert r.status_code == 200, r.text
    loaded = csrv.get("/models/loaded", headers=csrv.auth()).json()["data"]["models"]
    assert name in [m.get("model_name") for m in loaded], loaded
    deadline = time.monotonic() + 10
    while True:  # access counts are written off the request path
        after = csrv.get(f"/models/{name}/info", headers=csrv.auth()).json()["data"]["access_count"]
        if after > before or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after > before
