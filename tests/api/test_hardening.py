"""Findings of the hostile-client review (issue 17, the lows), one test each:
imports that follow symlinks out of the folder (L1) or copy a huge file
before reading its header (L7), a database readable by everyone (L8),
errors showing the server's absolute paths (L4)."""
import json
import os
import shutil
import socket
import stat
import struct
import threading
import time

import pytest
import requests

from conftest import FIXTURES, start_server
from test_health import assert_error

MODELS = os.path.join(FIXTURES, "models")


@pytest.fixture(scope="module")
def srv():
    s = start_server()
    yield s
    s.stop()


def import_model(srv, path, name):
    return srv.post("/models/import", headers=srv.auth(), json={"path": str(path), "model_name": name})


def test_import_refuses_symlink_out_of_the_folder(srv, tmp_path):
    """L1: vocab.txt pointing at a file outside the folder was copied, and its
    content became readable through /tokenize."""
    secret = tmp_path / "secret.txt"
    secret.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhunter2\n")
    folder = tmp_path / "m"
    shutil.copytree(os.path.join(MODELS, "tiny-bert-ner"), folder)
    for f in ("tokenizer.json", "vocab.txt"):
        if (folder / f).exists():
            (folder / f).unlink()
    os.symlink(secret, folder / "vocab.txt")
    out = assert_error(import_model(srv, folder, "evil/link"), 422)
    assert "vocab.txt" in out["detail"] and "outside" in out["detail"]
    assert srv.get("/models/evil/link/info", headers=srv.auth()).status_code == 404
    # A symlink that stays inside the folder is an ordinary file.
    (folder / "vocab.txt").unlink()
    shutil.copy(os.path.join(MODELS, "tiny-bert-ner", "vocab.txt"), folder / "real-vocab")
    os.symlink(folder / "real-vocab", folder / "vocab.txt")
    r = import_model(srv, folder, "evil/inside")
    assert r.status_code == 201, r.text


def test_huge_sparse_weights_refused_before_copying(srv, tmp_path):
    """L7: a 3 GiB sparse model.safetensors was copied in full (3 GiB written
    to the data dir) before its header was read."""
    folder = tmp_path / "big"
    shutil.copytree(os.path.join(MODELS, "tiny-bert-ner"), folder)
    with open(folder / "model.safetensors", "wb") as f:
        f.truncate(3 << 30)
    t0 = time.monotonic()
    out = assert_error(import_model(srv, folder, "big/sparse"), 422)
    elapsed = time.monotonic() - t0
    assert "model.safetensors" in out["detail"]
    assert elapsed < 2.0, elapsed
    partial = os.path.join(srv.data_dir, "models", ".partial")
    assert not os.path.isdir(partial) or not os.listdir(partial)


def test_import_errors_name_paths_relative_to_the_data_dir(srv, tmp_path):
    """L4: errors showed the server's absolute staging paths."""
    folder = tmp_path / "bad"
    shutil.copytree(os.path.join(MODELS, "tiny-bert-ner"), folder)
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": 64}')
    out = assert_error(import_model(srv, folder, "bad/cfg"), 422)
    assert os.path.realpath(srv.data_dir) not in out["detail"]
    assert ".partial" not in out["detail"]
    assert "models/bad--cfg" in out["detail"], out["detail"]


def test_database_files_are_owner_only(tmp_path):
    """L8: the database and its WAL were 0644."""
    srv = start_server()
    try:
        assert srv.get("/health").status_code == 200
        names = [n for n in os.listdir(srv.data_dir) if n.startswith("bertstudio.db")]
        assert "bertstudio.db" in names and "bertstudio.db-wal" in names, names
        for n in names:
            assert stat.S_IMODE(os.stat(os.path.join(srv.data_dir, n)).st_mode) == 0o600, n
    finally:
        srv.stop()
    # A database left 0644 by an older version is tightened at start.
    db = os.path.join(srv.data_dir, "bertstudio.db")
    os.chmod(db, 0o644)
    srv = start_server(data_dir=srv.data_dir)
    try:
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    finally:
        srv.stop()


@pytest.mark.parametrize("revision", ["main\n2026-01-01T00:00:00.000Z info auth: forged", "main/", "a//b",
                                      "x.lock", "v1.", "a/.b", "../x", "main branch"])
def test_bad_revision_is_400_before_any_job(srv, revision):
    """L3: invalid revisions got 202 (a job that later failed), and a newline
    in one forged log lines."""
    r = srv.post("/models/download", headers=srv.auth(), json={"model_name": "org/m", "revision": revision})
    out = assert_error(r, 400)
    assert "revision" in out["detail"]
    assert srv.get("/models/org/m/info", headers=srv.auth()).status_code == 404


def test_no_logged_value_forges_a_line(srv):
    """Every logged value is escaped: a request value holding a newline stays
    on its own line."""
    forged = "2026-01-01T00:00:00.000Z info auth: forged"
    srv.get("/no/such%0A" + forged.replace(" ", "%20"))
    srv.post("/models/download", headers=srv.auth(), json={"model_name": "org/m", "revision": "main\n" + forged})
    srv.post("/tasks/embeddings", headers=srv.auth(), json={"model_name": "x\n" + forged, "text": "a"})
    assert srv.get("/health").status_code == 200
    for line in srv.log_with("path=/no/such\\x0a2026-01-01").splitlines():
        assert not line.startswith(forged), line


def test_csrf_origin_is_the_servers_not_the_host_header(srv):
    """L10: the same-origin check compared Origin with the Host header, which
    a DNS-rebinding page sets to its own name as well."""
    from test_auth import ALL_PERMS, login
    secret, _ = srv.create_key("csrf", permissions=ALL_PERMS)
    s, r = login(srv, secret)
    assert r.status_code == 200, r.text
    evil = f"evil.example:{srv.port}"
    cookie = {"Cookie": "bs_session=" + s.cookies["bs_session"]}
    r = requests.post(srv.url + "/api-keys", json={"name": "rebound"},
                      headers={"Origin": "http://" + evil, "Host": evil, **cookie}, timeout=30)
    assert_error(r, 403)
    # The listening address is the studio's origin (localhost too on loopback).
    for origin in (srv.url, f"http://localhost:{srv.port}"):
        r = s.post(srv.url + "/api-keys", json={"name": "own"}, headers={"Origin": origin}, timeout=30)
        assert r.status_code == 201, r.text
    # Behind a proxy the operator names the public origin; then only it.
    h = srv.auth()
    assert_error(srv.request("PUT", "/settings/public_origin", json={"value": "https://studio.example/x"},
                             headers=h), 400)
    r = srv.request("PUT", "/settings/public_origin", json={"value": "https://studio.example"}, headers=h)
    assert r.status_code == 200, r.text
    try:
        r = requests.post(srv.url + "/api-keys", json={"name": "proxied"},
                          headers={"Origin": "https://studio.example", "Host": "studio.example", **cookie},
                          timeout=30)
        assert r.status_code == 201, r.text
        assert_error(s.post(srv.url + "/api-keys", json={"name": "x"}, headers={"Origin": srv.url}, timeout=30), 403)
    finally:
        srv.request("PUT", "/settings/public_origin", json={"value": ""}, headers=h)


def hostile_tokenizer(tmp_path, name, normalizer=None, pre_tokenizer=None):
    folder = tmp_path / name
    shutil.copytree(os.path.join(MODELS, "tiny-bert-embeddings"), folder)
    tok = json.loads((folder / "tokenizer.json").read_text())
    if normalizer:
        tok["normalizer"] = normalizer
    if pre_tokenizer:
        tok["pre_tokenizer"] = pre_tokenizer
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    return folder


def tokenize_until_loaded(srv, model, text):
    deadline = time.monotonic() + 30
    while True:
        t0 = time.monotonic()
        r = srv.post("/tokenize", headers=srv.auth(), json={"model_name": model, "text": text})
        if r.status_code != 503:
            return r, time.monotonic() - t0
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a background load


def test_normalizer_work_budget(srv, tmp_path):
    """L5: a Replace normalizer that multiplies the text (here 100x, twice)
    made one request burn CPU and memory in proportion; now the input fails
    with 422 once the text outgrows its budget."""
    grow = {"type": "Replace", "pattern": {"String": "a"}, "content": "a" * 100}
    folder = hostile_tokenizer(tmp_path, "grow", normalizer={"type": "Sequence", "normalizers": [grow, grow]})
    r = import_model(srv, folder, "hostile/grow")
    assert r.status_code == 201, r.text
    r, elapsed = tokenize_until_loaded(srv, "hostile/grow", "a" * 1000)
    out = assert_error(r, 422)
    assert "work budget" in out["detail"]
    assert elapsed < 2.0, elapsed
    # Ordinary text still tokenizes with that tokenizer.
    r, _ = tokenize_until_loaded(srv, "hostile/grow", "hello world")
    assert r.status_code == 200, r.text


def test_catastrophic_regex_is_422_not_429(srv, tmp_path):
    """L4/L5: a backtracking Split regex answered 429 (as if rate limited)."""
    split = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
    folder = hostile_tokenizer(tmp_path, "regex", pre_tokenizer=split)
    r = import_model(srv, folder, "hostile/regex")
    assert r.status_code == 201, r.text
    r, elapsed = tokenize_until_loaded(srv, "hostile/regex", "a" * 40 + "b")
    out = assert_error(r, 422)
    assert "work budget" in out["detail"]
    assert elapsed < 2.0, elapsed


def nan_weights(path):
    """Every F32 tensor of a safetensors file set to NaN."""
    b = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", b[:8])[0]
    for name, t in json.loads(b[8:8 + n]).items():
        if name != "__metadata__" and t["dtype"] == "F32":
            s, e = t["data_offsets"]
            b[8 + n + s:8 + n + e] = struct.pack("<f", float("nan")) * ((e - s) // 4)
    open(path, "wb").write(b)


def embed_until_loaded(srv, model):
    deadline = time.monotonic() + 30
    while True:
        r = srv.post("/tasks/embeddings", headers=srv.auth(), json={"model_name": model, "text": "zzzz hello"})
        if r.status_code != 503:
            return r
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a background load


def test_hostile_models_get_honest_statuses(srv, tmp_path):
    """L4: NaN weights answered 500 "out of memory", a token id beyond the
    model's own vocabulary 400 (the request's fault), config range errors
    400: a model the server cannot use is 422, naming why."""
    def folder(name):
        d = tmp_path / name
        shutil.copytree(os.path.join(MODELS, "tiny-bert-embeddings"), d)
        return d

    d = folder("nan")
    nan_weights(d / "model.safetensors")
    assert import_model(srv, d, "hostile/nan").status_code == 201
    out = assert_error(embed_until_loaded(srv, "hostile/nan"), 422)
    assert "non-finite" in out["detail"]

    d = folder("vocab")
    tok = json.loads((d / "tokenizer.json").read_text())
    tok["model"]["vocab"]["zzzz"] = 100000
    (d / "tokenizer.json").write_text(json.dumps(tok))
    assert import_model(srv, d, "hostile/vocab").status_code == 201
    out = assert_error(embed_until_loaded(srv, "hostile/vocab"), 422)
    assert "100000" in out["detail"] and "vocab_size" in out["detail"]

    for field, value in (("max_position_embeddings", 10 ** 12), ("layer_norm_eps", -1.0),
                         ("hidden_size", 0)):
        d = folder("cfg-" + field)
        cfg = json.loads((d / "config.json").read_text())
        cfg[field] = value
        (d / "config.json").write_text(json.dumps(cfg))
        out = assert_error(import_model(srv, d, "hostile/cfg"), 422)
        assert field in out["detail"], out["detail"]


def raw_status(srv, request):
    """Sends bytes as they are on a new connection; returns the status line."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def test_ambiguous_framing_is_400(srv):
    """L2: a request a proxy in front could frame differently (request
    smuggling) was accepted: two Content-Lengths (the first one won)."""
    key = srv.admin_key.encode()
    body = b'{"text": "a", "model_name": "none/none"}'
    head = b"POST /tokenize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + b"\r\n"
    cases = [
        head + b"Content-Length: %d\r\nContent-Length: 3\r\n\r\n" % len(body) + body,
        head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % len(body),
        head + b"Content-Length : %d\r\n\r\n" % len(body) + body,
    ]
    for req in cases:
        assert raw_status(srv, req) == "HTTP/1.1 400 Bad Request", req
    # The same request framed once is served (404: no such model).
    assert raw_status(srv, head + b"Content-Length: %d\r\n\r\n" % len(body) + body) == "HTTP/1.1 404 Not Found"


@pytest.mark.parametrize("target", ["/health%00/x", "/api-keys?limit=1%00abc", "/api-keys/%00",
                                    "/models/demo%00/info"])
def test_encoded_nul_in_url_is_400(srv, target):
    """L9: %00 cut the path or query value that got checked ("/health%00/x"
    answered as /health)."""
    req = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + srv.admin_key.encode() + b"\r\n\r\n"
    assert raw_status(srv, req) == "HTTP/1.1 400 Bad Request"
    # And the connection after it is not poisoned: a clean request passes.
    assert raw_status(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 200 OK"


def test_delete_and_reimport_while_loading_never_500(srv):
    """L6: deleting or re-importing a model while it loaded gave transient
    500s. Clients now see 404 (deleted), 503 + Retry-After (changed or
    loading) or 200."""
    src = os.path.join(MODELS, "tiny-bert-embeddings")
    seen = set()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            r = srv.post("/tasks/embeddings", headers=srv.auth(), json={"model_name": "race/m", "text": "a"})
            seen.add(r.status_code)
            if r.status_code not in (200, 404, 503):
                seen.add(r.text)

    t = threading.Thread(target=client)
    t.start()
    try:
        for i in range(15):
            assert import_model(srv, src, "race/m").status_code in (201, 409)
            srv.post("/models/race/m/load", headers=srv.auth())
            if i % 2:
                assert import_model(srv, src, "race/m").status_code in (201, 409)
            srv.request("DELETE", "/models/race/m", headers=srv.auth())
    finally:
        stop.set()
        t.join()
    assert 500 not in seen, seen
    assert seen <= {200, 404, 503}, seen
