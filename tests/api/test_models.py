"""The model cache over HTTP (/models) and on the command line (bertstudio
models), against a local fake Hub (hub_server.py) serving the fixture models."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import BIN, FIXTURES, start_server
from hub_server import FakeHub, fake_hub  # noqa: F401  (fixture)

MODELS = os.path.join(FIXTURES, "models")
FIXTURE_MODELS = sorted(d for d in os.listdir(MODELS)
                        if os.path.isfile(os.path.join(MODELS, d, "config.json")))
TASKS = {"tiny-bert-ner": "ner", "tiny-bert-qa": "qa", "tiny-bert-mlm": "fill-mask",
         "tiny-bert-classification": "classification", "tiny-bert-embeddings": "embeddings",
         "tiny-bart": "summarization", "tiny-electra-base": "features"}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fixture_size(fixture):
    """Bytes of the files a download of the fixture fetches."""
    total = 0
    for base, _, files in os.walk(os.path.join(MODELS, fixture)):
        for f in files:
            if f not in ("expected.json", "crosscheck.json", "README.md"):
                total += os.path.getsize(os.path.join(base, f))
    return total


def cli(data_dir, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, "models", *args, "--data-dir", data_dir], env=e,
                          capture_output=True, text=True, timeout=120)


def check_folder_matches_fixture(local_path, fixture):
    """Every file of the manifest is the fixture's file, and the manifest's
    own sha256 is the recorded checksum."""
    manifest = open(os.path.join(local_path, ".sha256sums"), encoding="utf-8").read()
    lines = manifest.splitlines()
    assert lines == sorted(lines, key=lambda l: l.split("  ", 1)[1].encode())
    names = []
    for line in lines:
        digest, name = line.split("  ", 1)
        assert digest == sha256(os.path.join(local_path, name))
        assert digest == sha256(os.path.join(MODELS, fixture, name))
        names.append(name)
    assert "config.json" in names and "model.safetensors" in names
    assert "expected.json" not in names
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


@pytest.fixture(scope="module")
def demo_server():
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": MODELS})
    yield srv
    srv.stop()


def auth(srv):
    return {"Authorization": f"Bearer {srv.admin_key}"}


def test_demo_models_registered_on_first_start(demo_server):
    srv = demo_server
    r = srv.get("/models", headers=auth(srv))
    assert r.status_code == 200, r.text
    models = {m["model_name"]: m for m in r.json()["data"]["models"]}
    assert set(models) == {f"demo/{d}" for d in FIXTURE_MODELS}
    for fixture, task in TASKS.items():
        m = models[f"demo/{fixture}"]
        assert m["task_type"] == task
        assert m["is_cached"] is True and m["state"] in ("not_loaded", "loaded", "loading")
        assert m["local_path"] == os.path.join(os.path.realpath(srv.data_dir), "models", "demo--" + fixture)
        assert m["checksum"] == check_folder_matches_fixture(m["local_path"], fixture)
    cfg = models["demo/tiny-bert-ner"]["model_config"]
    assert (cfg["vocab_size"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["max_position_embeddings"]) == (2975, 32, 4, 128)


def test_info_load_and_states(demo_server):
    srv = demo_server
    r = srv.get("/models/demo/tiny-bert-qa/info", headers=auth(srv))
    assert r.status_code == 200, r.text
    info = r.json()["data"]
    assert info["model_name"] == "demo/tiny-bert-qa"
    files = {f["path"]: f["sha256"] for f in info["files"]}
    assert files["model.safetensors"] == sha256(os.path.join(MODELS, "tiny-bert-qa", "model.safetensors"))
    # Load: 202 while it loads in the background, then 200.
    deadline = time.monotonic() + 30
    while True:
        r = srv.post("/models/demo/tiny-bert-qa/load", headers=auth(srv))
        assert r.status_code in (200, 202), r.text
        if r.status_code == 200:
            break
        assert r.headers.get("Retry-After")
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a background load, not hiding a race
    loaded = [m["model_name"] for m in srv.get("/models/loaded", headers=auth(srv)).json()["data"]["models"]]
    assert "demo/tiny-bert-qa" in loaded
    assert srv.get("/models/demo/tiny-bert-qa/info", headers=auth(srv)).json()["data"]["state"] == "loaded"
    # The original product's POST /models/load {"model_name"}.
    r = srv.post("/models/load", headers=auth(srv), json={"model_name": "nobody/none"})
    assert r.status_code == 404, r.text


def test_unknown_model_and_bad_names(demo_server):
    srv = demo_server
    h = auth(srv)
    assert srv.get("/models/nobody/none/info", headers=h).status_code == 404
    # Names that could leave the models folder never reach the file system.
    for path in ("/models/..%2F..%2Fetc/info", "/models/demo/../../etc/info", "/models/%2e%2e/info",
                 "/models/a.b/info", "/models/a/b/c/info"):
        r = (srv.raw_get if "/../" in path else srv.get)(path, headers=h)
        assert r.status_code in (400, 404), (path, r.text)
    for name in ("../../etc", "/etc/passwd", "a//b", "a/b/c", "demo/.."):
        r = srv.post("/models/download", headers=h, json={"model_name": name, "wait": True})
        assert r.status_code == 400, (name, r.text)
        r = srv.post("/models/import", headers=h, json={"path": MODELS + "/tiny-bert-ner", "model_name": name})
        assert r.status_code == 400, (name, r.text)
        r = srv.request("DELETE", f"/models/downloaded?model_name={requests.utils.quote(name)}", headers=h)
        assert r.status_code == 400, (name, r.text)
    r = srv.request("DELETE", "/models/demo/..", headers=h)
    assert r.status_code in (400, 404)
    assert os.path.isdir(os.path.join(srv.data_dir, "models", "demo--tiny-bert-ner"))


def test_import_needs_admin_and_validates(demo_server, tmp_path):
    srv = demo_server
    h = auth(srv)
    # A key with models:download only may not import.
    r = srv.post("/api-keys", headers=h, json={"name": "downloader", "permissions": ["models:download"]})
    assert r.status_code in (200, 201), r.text
    key = r.json()["data"]["api_key"]
    r = srv.post("/models/import", headers={"Authorization": f"Bearer {key}"},
                 json={"path": os.path.join(MODELS, "tiny-bert-ner"), "model_name": "mine/ner"})
    assert r.status_code == 403, r.text
    # Relative paths and files are refused.
    r = srv.post("/models/import", headers=h, json={"path": "tests/fixtures", "model_name": "mine/x"})
    assert r.status_code == 400
    r = srv.post("/models/import", headers=h,
                 json={"path": os.path.join(MODELS, "tiny-bert-ner", "config.json"), "model_name": "mine/x"})
    assert r.status_code == 400
    # A folder whose weights disagree with its config is not registered.
    bad = tmp_path / "bad"
    shutil.copytree(os.path.join(MODELS, "tiny-bert-ner"), bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["hidden_size"] = 64
    cfg["num_attention_heads"] = 8
    (bad / "config.json").write_text(json.dumps(cfg))
    r = srv.post("/models/import", headers=h, json={"path": str(bad), "model_name": "mine/bad"})
    assert r.status_code == 422, r.text
    assert "mine/bad" in r.json()["detail"]
    assert srv.get("/models/mine/bad/info", headers=h).status_code == 404
    assert not os.path.exists(os.path.join(srv.data_dir, "models", "mine--bad"))
    # A good one is copied (not referenced) and registered.
    good = tmp_path / "good"
    shutil.copytree(os.path.join(MODELS, "tiny-bert-ner"), good)
    r = srv.post("/models/import", headers=h, json={"path": str(good), "model_name": "mine/ner", "cache_priority": "high"})
    assert r.status_code == 201, r.text
    doc = r.json()["data"]
    assert doc["task_type"] == "ner" and doc["cache_priority"] == "high"
    assert doc["download_url"] == "file://" + str(good)
    shutil.rmtree(good)
    assert check_folder_matches_fixture(doc["local_path"], "tiny-bert-ner") == doc["checksum"]
    # Delete, then it is gone everywhere.
    r = srv.request("DELETE", "/models/mine/ner", headers=h)
    assert r.status_code == 200, r.text
    assert not os.path.exists(doc["local_path"])
    assert srv.get("/models/mine/ner/info", headers=h).status_code == 404
    assert srv.request("DELETE", "/models/mine/ner", headers=h).status_code == 404


@pytest.fixture
def hub_server(fake_hub):  # noqa: F811
    srv = start_server(env={"HF_ENDPOINT": fake_hub.url, "BERTSTUDIO_DEMO_MODELS": ""})
    yield srv, fake_hub
    srv.stop()


def read_events(srv, name, h, timeout=60):
    """Follows GET /models/{name}/events as EventSource does (reconnecting
    with Last-Event-ID) until a final event."""
    events, last = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = dict(h)
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        r = requests.get(f"{srv.url}/models/{name}/events", headers=headers, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        for block in r.text.split("\n\n"):
            ev = {}
            for line in block.splitlines():
                k, _, v = line.partition(": ")
                ev[k] = v
            if "event" not in ev:
                continue
            if "id" in ev:
                last = int(ev["id"])
            events.append((ev["event"], json.loads(ev["data"])))
            if ev["event"] in ("done", "error", "state"):
                return events
    raise AssertionError(f"no final event: {events}")


def test_download_through_server_with_events(hub_server):
    srv, hub = hub_server
    h = auth(srv)
    r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-qa"})
    assert r.status_code == 202, r.text
    assert r.json()["data"]["events"] == "/models/fixtures/tiny-bert-qa/events"
    events = read_events(srv, "fixtures/tiny-bert-qa", h)
    kinds = [e[0] for e in events]
    assert kinds[-1] == "done", events
    progress = [e[1] for e in events if e[0] == "progress"]
    stages = [p["stage"] for p in progress]
    assert "downloading" in stages
    down = [p for p in progress if p["stage"] == "downloading"]
    total = sum(os.path.getsize(os.path.join(MODELS, "tiny-bert-qa", f)) for f in
                ("config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json",
                 "tokenizer_config.json", "vocab.txt"))
    assert down[-1]["done"] == down[-1]["total"] == total
    assert all(a["done"] <= b["done"] for a, b in zip(down, down[1:]))
    doc = events[-1][1]
    assert doc["model_name"] == "fixtures/tiny-bert-qa" and doc["task_type"] == "qa"
    assert doc["download_url"] == f"{hub.url}/fixtures/tiny-bert-qa"
    assert check_folder_matches_fixture(doc["local_path"], "tiny-bert-qa") == doc["checksum"]
    # The downloaded model serves a task (503 while it loads).
    body = {"question": "Who?", "context": "Alice went home.", "model_name": "fixtures/tiny-bert-qa"}
    deadline = time.monotonic() + 30
    while True:
        r = srv.post("/tasks/qa", headers=h, json=body)
        if r.status_code != 503:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a background load
    assert r.status_code == 200, r.text
    # After a download, the events endpoint reports the state.
    assert read_events(srv, "fixtures/tiny-bert-qa", h)[-1][0] in ("done", "state")


def test_download_errors_through_server(hub_server):
    srv, hub = hub_server
    h = auth(srv)
    r = srv.post("/models/download", headers=h, json={"model_name": "nobody/nothing", "wait": True})
    assert r.status_code == 404, r.text
    assert "nobody/nothing" in r.json()["detail"]
    # A corrupted file: checksum mismatch, nothing registered or left in place.
    hub.corrupt = {"model.safetensors"}
    r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-mlm", "wait": True})
    assert r.status_code == 502, r.text
    assert "checksum mismatch" in r.json()["detail"]
    assert srv.get("/models/fixtures/tiny-bert-mlm/info", headers=h).status_code == 404
    assert not os.path.exists(os.path.join(srv.data_dir, "models", "fixtures", "tiny-bert-mlm"))
    # A private repo without HF_TOKEN: the Hub's refusal, named.
    hub.corrupt = set()
    hub.token = "hf_secret"
    r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-mlm", "wait": True})
    assert r.status_code == 502, r.text
    assert "HF_TOKEN" in r.json()["detail"]
    # Downloading needs models:download.
    r = srv.post("/api-keys", headers=h, json={"name": "runner", "permissions": ["tasks:execute"]})
    key = r.json()["data"]["api_key"]
    r = srv.post("/models/download", headers={"Authorization": f"Bearer {key}"},
                 json={"model_name": "fixtures/tiny-bert-mlm"})
    assert r.status_code == 403


def test_server_download_resumes_dropped_connection(hub_server):
    srv, hub = hub_server
    hub.drop_once = {"model.safetensors"}
    r = srv.post("/models/download", headers=auth(srv),
                 json={"model_name": "fixtures/tiny-distilbert-qa", "wait": True})
    assert r.status_code == 201, r.text
    half = os.path.getsize(os.path.join(MODELS, "tiny-distilbert-qa", "model.safetensors")) // 2
    # The retry asked for the second half, at the Hub and then at the CDN it redirects to.
    ranged = [q["path"] for q in hub.requests if q["range"] == f"bytes={half}-"]
    assert ranged[-1] == "/cdn/fixtures/tiny-distilbert-qa/model.safetensors"
    assert all(p.endswith("/model.safetensors") for p in ranged)
    doc = r.json()["data"]
    assert check_folder_matches_fixture(doc["local_path"], "tiny-distilbert-qa") == doc["checksum"]


def test_disk_cap_evicts_least_recently_used(hub_server):
    srv, hub = hub_server
    h = auth(srv)
    names = ["fixtures/tiny-bert-qa", "fixtures/tiny-bert-ner", "fixtures/tiny-bert-mlm"]
    docs = {}
    for n in names[:2]:
        r = srv.post("/models/download", headers=h, json={"model_name": n, "wait": True})
        assert r.status_code == 201, r.text
        docs[n] = r.json()["data"]
    # Room for the last two of these models, not all three.
    cap = docs[names[1]]["file_size"] + fixture_size("tiny-bert-mlm") + 1000
    assert docs[names[0]]["file_size"] + docs[names[1]]["file_size"] <= cap
    r = srv.request("PUT", "/settings/model_cache_max_bytes", headers=h, json={"value": cap})
    assert r.status_code == 200, r.text
    r = srv.post("/models/download", headers=h, json={"model_name": names[2], "wait": True})
    assert r.status_code == 201, r.text
    # The least recently used (the first download) went; its history stays.
    info = srv.get(f"/models/{names[0]}/info", headers=h).json()["data"]
    assert info["is_cached"] is False and info["state"] == "not_cached"
    assert not os.path.exists(docs[names[0]]["local_path"])
    for n in names[1:]:
        assert srv.get(f"/models/{n}/info", headers=h).json()["data"]["is_cached"] is True
    cached = [m["model_name"] for m in srv.get("/models/downloaded", headers=h).json()["data"]["models"]]
    assert sorted(cached) == sorted(names[1:])


def test_disk_cap_keeps_loaded_models(hub_server):
    srv, hub = hub_server
    h = auth(srv)
    names = ["fixtures/tiny-bert-qa", "fixtures/tiny-bert-ner", "fixtures/tiny-bert-mlm"]
    docs = {}
    for n in names[:2]:
        r = srv.post("/models/download", headers=h, json={"model_name": n, "wait": True})
        assert r.status_code == 201, r.text
        docs[n] = r.json()["data"]
    # The least recently used model is loaded: it must survive the cap.
    deadline = time.monotonic() + 30
    while srv.post(f"/models/{names[0]}/load", headers=h).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a background load
    cap = docs[names[0]]["file_size"] + fixture_size("tiny-bert-mlm") + 1000
    r = srv.request("PUT", "/settings/model_cache_max_bytes", headers=h, json={"value": cap})
    assert r.status_code == 200, r.text
    r = srv.post("/models/download", headers=h, json={"model_name": names[2], "wait": True})
    assert r.status_code == 201, r.text
    state = {n: srv.get(f"/models/{n}/info", headers=h).json()["data"] for n in names}
    assert state[names[0]]["is_cached"] is True and state[names[0]]["state"] == "loaded"
    assert state[names[1]]["is_cached"] is False
    assert state[names[2]]["is_cached"] is True


def test_failed_download_events(hub_server):
    srv, hub = hub_server
    h = auth(srv)
    hub.corrupt = {"tokenizer.json"}
    r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-ner"})
    assert r.status_code == 202, r.text
    events = read_events(srv, "fixtures/tiny-bert-ner", h)
    assert events[-1][0] == "error", events
    assert "checksum mismatch" in events[-1][1]["detail"]
    assert "tokenizer.json" in events[-1][1]["detail"]
    assert srv.get("/models/fixtures/tiny-bert-ner/info", headers=h).status_code == 404
    # After the fix on the Hub's side, a new download succeeds and only
    # fetches what is missing (the good files were kept).
    hub.corrupt = set()
    hub.requests.clear()
    r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-ner", "wait": True})
    assert r.status_code == 201, r.text
    fetched = [q["path"].rsplit("/", 1)[1] for q in hub.requests if "/resolve/" in q["path"]]
    # (files are fetched in listing order; the failure stopped at tokenizer.json)
    assert fetched == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]


def test_available_proxies_hub_search(hub_server):
    srv, hub = hub_server
    r = srv.get("/models/available?search=bert-qa", headers=auth(srv))
    assert r.status_code == 200, r.text
    ids = [m["model_name"] for m in r.json()["data"]["models"]]
    assert ids == ["fixtures/tiny-bert-qa", "fixtures/tiny-distilbert-qa"]
    r = srv.get("/models/available?tag=albert", headers=auth(srv))
    assert sorted(m["model_name"] for m in r.json()["data"]["models"]) == [
        "fixtures/tiny-albert-classification", "fixtures/tiny-albert-mlm"]


# ── the command line ──

@pytest.mark.parametrize("fixture", FIXTURE_MODELS)
def test_cli_download_each_fixture(fake_hub, fixture, tmp_path):  # noqa: F811
    data = str(tmp_path / "data")
    r = cli(data, "download", f"fixtures/{fixture}", env={"HF_ENDPOINT": fake_hub.url})
    assert r.returncode == 0, r.stderr
    assert f"downloaded fixtures/{fixture}" in r.stdout
    # Not a terminal: plain progress lines, one per stage and finished file.
    assert "\r" not in r.stdout and "downloading:" in r.stdout
    r = cli(data, "info", f"fixtures/{fixture}", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["local_path"] == os.path.join(os.path.realpath(data), "models", "fixtures--" + fixture)
    assert check_folder_matches_fixture(doc["local_path"], fixture) == doc["checksum"]
    if fixture in TASKS:
        assert doc["task_type"] == TASKS[fixture]
    assert not os.listdir(os.path.join(data, "models", ".partial"))


def test_cli_import_list_remove(tmp_path):
    data = str(tmp_path / "data")
    r = cli(data, "import", os.path.join(MODELS, "tiny-bert-embeddings"), "me/emb")
    assert r.returncode == 0, r.stderr
    r = cli(data, "list")
    assert r.returncode == 0
    assert "me/emb" in r.stdout and "embeddings" in r.stdout
    r = cli(data, "list", "--json")
    assert [m["model_name"] for m in json.loads(r.stdout)] == ["me/emb"]
    r = cli(data, "remove", "me/emb")
    assert r.returncode == 0 and "removed me/emb" in r.stdout
    assert cli(data, "info", "me/emb").returncode == 1
    assert cli(data, "remove", "me/emb").returncode == 1
    r = cli(data, "import", os.path.join(MODELS, "tiny-bert-embeddings"), "../escape")
    assert r.returncode == 1 and "model_name" in r.stderr
    assert not os.path.exists(os.path.join(str(tmp_path), "escape"))
    assert cli(data, "frobnicate").returncode == 2


def test_cli_missing_repo_token_and_resume(fake_hub, tmp_path):  # noqa: F811
    data = str(tmp_path / "data")
    env = {"HF_ENDPOINT": fake_hub.url}
    r = cli(data, "download", "nobody/nothing", env=env)
    assert r.returncode == 1
    assert "nobody/nothing" in r.stderr and "not found" in r.stderr
    # Bearer token required and honoured.
    fake_hub.token = "hf_abc"
    r = cli(data, "download", "fixtures/tiny-bert-ner", env=env)
    assert r.returncode == 1 and "HF_TOKEN" in r.stderr
    fake_hub.requests.clear()
    fake_hub.drop_once = {"model.safetensors"}
    r = cli(data, "download", "fixtures/tiny-bert-ner", env={**env, "HF_TOKEN": "hf_abc"})
    assert r.returncode == 0, r.stderr
    assert all(q["auth"] == "Bearer hf_abc" for q in fake_hub.requests if "/resolve/" in q["path"])
    # The dropped connection was resumed with a Range request for the rest.
    half = os.path.getsize(os.path.join(MODELS, "tiny-bert-ner", "model.safetensors")) // 2
    ranged = [q for q in fake_hub.requests if q["range"] == f"bytes={half}-"]
    assert ranged and "model.safetensors" in ranged[0]["path"]
    doc = json.loads(cli(data, "info", "fixtures/tiny-bert-ner", "--json").stdout)
    assert check_folder_matches_fixture(doc["local_path"], "tiny-bert-ner") == doc["checksum"]


def sse_events(lines):
    """Yields (event, data, id) from an iterator of text lines, as they come."""
    ev = {}
    for line in lines:
        if line == "":
            if "event" in ev:
                yield ev["event"], json.loads(ev["data"]), ev.get("id")
            ev = {}
            continue
        k, _, v = line.partition(": ")
        ev[k] = v


def test_events_stream_on_one_connection(hub_server):
    """GET /models/{name}/events is one open stream: the events of a running
    download arrive while it runs (the fake Hub holds the weights file until
    the test has read a progress event), and the stream ends by itself after
    the final event."""
    import threading
    srv, hub = hub_server
    h = auth(srv)
    gate = threading.Event()
    hub.gates["model.safetensors"] = gate
    try:
        r = srv.post("/models/download", headers=h, json={"model_name": "fixtures/tiny-bert-ner"})
        assert r.status_code == 202, r.text
        with requests.get(f"{srv.url}/models/fixtures/tiny-bert-ner/events", headers=h,
                          stream=True, timeout=30) as r:
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            assert r.headers.get("Transfer-Encoding") == "chunked"
            seen = []
            for kind, data, eid in sse_events(r.iter_lines(decode_unicode=True)):
                seen.append((kind, data, eid))
                if kind == "progress" and not gate.is_set():
                    # Read while the download is held: streamed, not buffered.
                    state = srv.get("/models/fixtures/tiny-bert-ner/info", headers=h)
                    assert state.status_code == 404 or state.json()["data"]["state"] == "downloading"
                    gate.set()
            # The loop ended because the server closed the stream.
    finally:
        gate.set()
    kinds = [k for k, _, _ in seen]
    assert kinds[-1] == "done", kinds
    assert "progress" in kinds
    ids = [int(i) for _, _, i in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Resuming after the last id: the stream ends at once, empty.
    with requests.get(f"{srv.url}/models/fixtures/tiny-bert-ner/events",
                      headers={**h, "Last-Event-ID": str(ids[-1])}, stream=True, timeout=30) as r:
        rest = list(sse_events(r.iter_lines(decode_unicode=True)))
    assert rest == [], rest  # the finished job has nothing after its last id
