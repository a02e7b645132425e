"""The original product's API to its code (backend/main.py of the original,
docs/compat.md): each of its routes with its exact request, checked for its
exact answer shape (keys, types, nesting), and, on the paths both APIs
share, that our own requests still get our answers."""
import time

import pytest

from conftest import FIXTURES, start_server
from hub_server import FakeHub
from test_tasks import call

import os


@pytest.fixture(scope="module")
def hub():
    h = FakeHub().start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def osrv(hub):
    srv = start_server(env={"HF_ENDPOINT": hub.url,
                            "BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    r = srv.request("PUT", "/settings/max_loaded_models", json={"value": 64}, headers=srv.auth())
    assert r.status_code == 200, r.text
    r = srv.request("PUT", "/settings/default_model", json={"value": "demo/tiny-bert-mlm"},
                    headers=srv.auth())
    assert r.status_code == 200, r.text
    secret, _ = srv.create_key(name="compat", permissions=(
        "tasks:execute", "tasks:save", "models:download", "admin:read", "admin:write"),
        rate_limits={"requests_per_minute": 1000000, "requests_per_hour": 100000000})
    srv.hdr = srv.auth(secret)
    yield srv
    srv.stop()


def keys_are(obj, keys):
    assert isinstance(obj, dict), obj
    assert set(obj) == set(keys), (sorted(obj), sorted(keys))


def is_detail(r, status):
    assert r.status_code == status, r.text
    keys_are(r.json(), {"detail"})
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def wait_for(pred, what, deadline_s=60):
    end = time.monotonic() + deadline_s
    while not pred():
        assert time.monotonic() < end, what
        time.sleep(0.05)  # polling a background job, not hiding a race


# ── task routes ──

def test_fill_mask_results_and_no_mask_400(osrv):
    r = call(osrv, "/fill-mask", {"text": "the [MASK] sat.", "model": "demo/tiny-bert-mlm"})
    assert r.status_code == 200, r.text
    keys_are(r.json(), {"results"})
    rows = r.json()["results"]
    assert rows and all(set(x) >= {"score", "token", "token_str", "sequence"} for x in rows)
    assert all(isinstance(x["score"], float) and isinstance(x["token"], int)
               and isinstance(x["token_str"], str) and isinstance(x["sequence"], str) for x in rows)
    is_detail(call(osrv, "/fill-mask", {"text": "no mask here", "model": "demo/tiny-bert-mlm"}), 400)


def test_features_is_the_single_texts_matrix(osrv):
    r = call(osrv, "/features", {"text": "one two three", "model": "demo/tiny-bert-embeddings"})
    assert r.status_code == 200, r.text
    keys_are(r.json(), {"features"})
    f = r.json()["features"]
    assert isinstance(f, list) and len(f) >= 3  # tokens, with [CLS] and [SEP]
    assert all(isinstance(row, list) and len(row) == len(f[0]) > 1 for row in f)
    assert all(isinstance(v, float) for row in f for v in row)


def test_model_is_optional_and_defaults_to_the_setting(osrv):
    # The setting points at demo/tiny-bert-mlm (the fixture): /fill-mask without model.
    with_default = call(osrv, "/fill-mask", {"text": "a [MASK] b"})
    named = call(osrv, "/fill-mask", {"text": "a [MASK] b", "model": "demo/tiny-bert-mlm"})
    assert with_default.status_code == 200, with_default.text
    assert with_default.json() == named.json()
    r = call(osrv, "/features", {"text": "x", "model": None})
    assert r.status_code == 200 and isinstance(r.json()["features"][0][0], float)
    is_detail(call(osrv, "/features", {"text": "x", "model": 5}), 400)


def test_default_model_not_cached_says_how_to_download():
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": ""})
    try:
        for path, body in (("/embed", {"texts": ["a"]}), ("/fill-mask", {"text": "a [MASK]"}),
                           ("/features", {"text": "a"}), ("/classify", {"texts": ["a"]}),
                           ("/qa", {"question": "q", "context": "c"}), ("/ner", {"text": "a"}),
                           ("/summarize", {"text": "a"})):
            r = srv.post(path, json=body, headers=srv.auth())
            assert 400 <= r.status_code < 500, r.text
            keys_are(r.json(), {"detail"})
            assert "bert-base-uncased" in r.json()["detail"] and "/models/download" in r.json()["detail"]
    finally:
        srv.stop()


def test_embed_and_stats_counts_public(osrv):
    before = osrv.get("/stats").json()
    r = call(osrv, "/embed", {"texts": ["a", "b", "c"], "model": "demo/tiny-bert-embeddings"})
    assert r.status_code == 200, r.text
    assert len(r.json()["embeddings"]) == 3
    r = osrv.get("/stats")  # public: no credentials
    assert r.status_code == 200, r.text
    s = r.json()
    keys_are(s, {"loaded_models", "available_models", "embeddings_generated", "playground_sessions"})
    assert isinstance(s["loaded_models"], int) and isinstance(s["available_models"], str)
    assert isinstance(s["embeddings_generated"], int) and isinstance(s["playground_sessions"], int)
    assert s["embeddings_generated"] == before["embeddings_generated"] + 3
    assert s["loaded_models"] >= 1 and int(s["available_models"]) >= s["loaded_models"]
    # The serving details (model names, batcher) need a key.
    assert osrv.get("/stats/serving").status_code == 401
    d = osrv.get("/stats/serving", headers=osrv.hdr).json()
    assert "demo/tiny-bert-embeddings" in d["loaded_models"]


def test_task_errors_are_fastapi_detail(osrv):
    is_detail(call(osrv, "/qa", {"question": "a", "model": "demo/tiny-bert-qa"}), 400)
    is_detail(call(osrv, "/classify", {"texts": ["a"], "model": "nobody/none"}), 404)


# ── models ──

def test_models_available_bare_list(osrv):
    r = osrv.get("/models/available", params={"search": "bert", "shape": "original"}, headers=osrv.hdr)
    assert r.status_code == 200, r.text
    rows = r.json()
    assert isinstance(rows, list) and rows
    for m in rows:
        keys_are(m, {"id", "name", "description", "tags", "downloads", "likes"})
        assert isinstance(m["id"], str) and isinstance(m["name"], str) and isinstance(m["description"], str)
        assert m["tags"] is None or isinstance(m["tags"], list)
        assert m["downloads"] is None or isinstance(m["downloads"], int)
        assert m["id"].endswith(m["name"])
    # Ours, on the same path.
    r = osrv.get("/models/available", params={"search": "bert"}, headers=osrv.hdr)
    assert r.json()["success"] is True and "models" in r.json()["data"]


def test_download_downloaded_load_loaded_loading_delete(osrv, hub):
    h = osrv.hdr
    mid = "fixtures/tiny-bert-ner"
    r = osrv.post("/models/download", json={"model_id": mid}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"Started downloading {mid}"}

    def downloaded():
        d = osrv.get("/models/downloaded?shape=original", headers=h).json()
        return mid in d and d[mid]["status"] == "completed"
    wait_for(downloaded, "the download completes")
    d = osrv.get("/models/downloaded?shape=original", headers=h).json()
    assert isinstance(d, dict)
    e = d[mid]
    keys_are(e, {"status", "size", "timestamp", "progress", "files_downloaded", "total_files",
                 "downloaded_size_mb", "total_size_mb"})
    assert e["progress"] == 100 and e["files_downloaded"] == e["total_files"] >= 3
    assert all(isinstance(e[k], int) for k in ("size", "progress", "downloaded_size_mb", "total_size_mb"))
    assert e["timestamp"] is None or isinstance(e["timestamp"], str)
    r = osrv.post("/models/download", json={"model_id": mid}, headers=h)
    assert r.json() == {"message": f"Model {mid} already downloaded or is downloading."}
    is_detail(osrv.post("/models/download", json={"model_id": ""}, headers=h), 400)

    r = osrv.post("/models/load", json={"model_id": mid}, headers=h)
    assert r.status_code == 200, r.text
    keys_are(r.json(), {"message"})

    def loaded():
        return mid in osrv.get("/models/loaded", params={"shape": "original"}, headers=h).json()
    wait_for(loaded, "the load completes")
    lst = osrv.get("/models/loaded", params={"shape": "original"}, headers=h).json()
    assert isinstance(lst, list) and all(isinstance(x, str) for x in lst)
    r = osrv.post("/models/load", json={"model_id": mid}, headers=h)
    assert r.json() == {"message": f"Model {mid} is already loaded."}
    loading = osrv.get("/models/loading", params={"shape": "original"}, headers=h).json()
    assert isinstance(loading, dict)
    for v in loading.values():
        assert set(v) <= {"status", "timestamp", "progress", "error_message"}
        assert {"status", "timestamp", "progress"} <= set(v) and isinstance(v["progress"], int)
    assert loading[mid]["status"] == "completed"
    is_detail(osrv.post("/models/load", json={"model_id": "nobody/none"}, headers=h), 400)

    r = osrv.request("DELETE", "/models/downloaded", params={"author": "fixtures", "model": "tiny-bert-ner"},
                     headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"Deleted {mid} from memory and/or HuggingFace cache"}
    r = osrv.request("DELETE", "/models/downloaded", params={"author": "fixtures", "model": "tiny-bert-ner"},
                     headers=h)
    assert r.status_code == 404 and r.json() == {"detail": "Model not found in memory or cache"}
    assert mid not in osrv.get("/models/loaded?shape=original", headers=h).json()


def test_models_ours_on_the_shared_paths(osrv):
    h = osrv.hdr
    for path in ("/models/downloaded", "/models/loaded", "/models/loading"):
        r = osrv.get(path, headers=h)
        assert r.status_code == 200 and r.json()["success"] is True and "models" in r.json()["data"], path
    r = osrv.post("/models/load", json={"model_name": "demo/tiny-bert-qa"}, headers=h)
    assert r.status_code in (200, 202) and r.json()["data"]["model_name"] == "demo/tiny-bert-qa"
    r = osrv.request("DELETE", "/models/downloaded", params={"model_name": "nobody/none"}, headers=h)
    assert r.status_code == 404 and r.json()["success"] is False
    r = osrv.post("/models/download", json={}, headers=h)
    assert r.status_code == 400 and "model_name" in r.json()["detail"]
    # Permissions hold on the original's shape too.
    secret, _ = osrv.create_key(name="exec-only", permissions=("tasks:execute",))
    r = osrv.post("/models/download", json={"model_id": "fixtures/tiny-bert-qa"}, headers=osrv.auth(secret))
    assert r.status_code == 403
    assert osrv.get("/models/loaded?shape=original").status_code == 401


# ── settings ──

def test_settings_object_partial_post_and_write_only_token(osrv):
    h = osrv.hdr
    r = osrv.get("/settings", params={"shape": "original"}, headers=h)
    assert r.status_code == 200, r.text
    s = r.json()
    keys_are(s, {"hf_token", "server_url", "model_cache_dir", "notifications", "security"})
    keys_are(s["notifications"], {"download_complete", "on_error"})
    keys_are(s["security"], {"verify_checksums", "sandbox_mode"})
    assert s["hf_token"] is None and isinstance(s["server_url"], str) and isinstance(s["model_cache_dir"], str)
    assert s["model_cache_dir"].startswith(os.path.realpath(osrv.data_dir)) or osrv.data_dir in s["model_cache_dir"]

    r = osrv.post("/settings", json={"hf_token": "hf_secret_value", "notifications": {"on_error": False}},
                  headers=h)
    assert r.status_code == 200 and r.json() == {"message": "Settings updated"}, r.text
    s2 = osrv.get("/settings", params={"shape": "original"}, headers=h).json()
    assert s2["hf_token"] is None and s2["notifications"] == {"download_complete": True, "on_error": False}
    assert "hf_secret_value" not in osrv.get("/settings", headers=h).text
    ours = {x["setting_key"]: x for x in osrv.get("/settings", headers=h).json()["data"]["settings"]}
    assert ours["notify_on_error"]["setting_value"] is False
    assert ours["hf_token"]["setting_value"] is None and ours["hf_token"]["is_set"] is True
    assert "hf_secret_value" not in osrv.get("/settings/hf_token", headers=h).text

    r = osrv.post("/settings", json={"server_url": "https://studio.example:8443"}, headers=h)
    assert r.status_code == 200, r.text
    assert osrv.get("/settings?shape=original", headers=h).json()["server_url"] == "https://studio.example:8443"
    assert ours is not None
    is_detail(osrv.post("/settings", json={"security": {"sandbox_mode": False}}, headers=h), 400)
    is_detail(osrv.post("/settings", json={"model_cache_dir": "/elsewhere"}, headers=h), 400)
    is_detail(osrv.post("/settings", json={"colour": "red"}, headers=h), 400)
    # The token goes into an Authorization header: no line breaks, bounded.
    is_detail(osrv.post("/settings", json={"hf_token": "a\r\nX-Evil: 1"}, headers=h), 400)
    is_detail(osrv.post("/settings", json={"hf_token": "h" * 300}, headers=h), 400)
    is_detail(osrv.post("/settings", json={"hf_token": "ok", "security": {"verify_checksums": False}},
                        headers=h), 400)
    # Nothing of a refused body was stored.
    assert osrv.get("/settings?shape=original", headers=h).json()["security"]["sandbox_mode"] is True
    stored = {x["setting_key"]: x for x in osrv.get("/settings", headers=h).json()["data"]["settings"]}
    assert stored["hf_token"]["updated_at"] == ours["hf_token"]["updated_at"]
    # Ours: the list, unchanged; and an execute-only key may not write.
    assert osrv.get("/settings", headers=h).json()["success"] is True
    secret, _ = osrv.create_key(name="exec-only-2", permissions=("tasks:execute",))
    assert osrv.post("/settings", json={"hf_token": "x"}, headers=osrv.auth(secret)).status_code == 403
    r = osrv.request("PUT", "/settings/public_origin", json={"value": ""}, headers=h)
    assert r.status_code == 200


def test_original_get_shapes_setting(osrv):
    h = osrv.hdr
    r = osrv.request("PUT", "/settings/original_get_shapes", json={"value": True}, headers=h)
    assert r.status_code == 200, r.text
    try:
        assert isinstance(osrv.get("/models/loaded", headers=h).json(), list)
        assert osrv.get("/auth/check", headers=h).json() == {"authenticated": True}
        assert osrv.get("/auth/check").json() == {"authenticated": False}
        # ?shape=ours still gets ours.
        assert osrv.get("/models/loaded?shape=ours", headers=h).json()["success"] is True
    finally:
        osrv.request("PUT", "/settings/original_get_shapes", json={"value": False}, headers=h)
    assert osrv.get("/models/loaded", headers=h).json()["success"] is True


# ── keys and auth ──

def test_api_keys_bodyless_post_and_list(osrv):
    h = osrv.hdr
    r = osrv.post("/api-keys", headers=h)
    assert r.status_code == 200, r.text
    keys_are(r.json(), {"id", "key"})
    kid, key = r.json()["id"], r.json()["key"]
    # The new key works on the original's task routes.
    assert call(osrv, "/embed", {"texts": ["a"], "model": "demo/tiny-bert-embeddings"},
                headers=osrv.auth(key)).status_code == 200
    r = osrv.get("/api-keys", params={"shape": "original"}, headers=h)
    assert r.status_code == 200, r.text
    keys_are(r.json(), {"api_keys"})
    for k in r.json()["api_keys"]:
        keys_are(k, {"id", "created_at", "revoked", "last_used_at"})
        assert isinstance(k["id"], str) and isinstance(k["created_at"], str) and isinstance(k["revoked"], bool)
        assert k["last_used_at"] is None or isinstance(k["last_used_at"], str)
    assert kid in [k["id"] for k in r.json()["api_keys"]]
    assert '"key"' not in r.text and key not in r.text
    # Ours on the same paths.
    r = osrv.post("/api-keys", json={"name": "ours", "permissions": ["tasks:execute"]}, headers=h)
    assert r.status_code == 201 and r.json()["data"]["api_key"].startswith("ak_")
    assert osrv.get("/api-keys", headers=h).json()["success"] is True
    assert osrv.post("/api-keys").status_code == 401
    assert osrv.post("/api-keys", headers=osrv.auth(key)).status_code == 403


def test_auth_check_and_logout(osrv):
    r = osrv.get("/auth/check", params={"shape": "original"})
    assert r.status_code == 200 and r.json() == {"authenticated": False}
    assert osrv.get("/auth/check").status_code == 401  # ours
    assert osrv.get("/auth/check?shape=original", headers=osrv.hdr).json() == {"authenticated": True}
    r = osrv.get("/auth/check", headers=osrv.hdr)
    assert r.json()["success"] is True  # ours, with a credential
    assert osrv.get("/auth/check", headers=osrv.auth("ak_wrong")).status_code == 401
    r = osrv.post("/logout", headers=osrv.hdr)
    assert r.status_code == 200 and r.json() == {"success": True}


# ── OpenAI ──

def test_v1_model_object(osrv):
    r = osrv.get("/v1/models/demo/tiny-bert-embeddings", headers=osrv.hdr)
    assert r.status_code == 200, r.text
    m = r.json()
    keys_are(m, {"id", "object", "created", "owned_by"})
    assert m["id"] == "demo/tiny-bert-embeddings" and m["object"] == "model"
    assert isinstance(m["created"], int) and isinstance(m["owned_by"], str)
    r = osrv.get("/v1/models/nobody/none", headers=osrv.hdr)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
