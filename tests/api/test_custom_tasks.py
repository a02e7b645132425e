"""Saved custom tasks over HTTP (docs/custom-tasks.md): save, list with
search/tags/model/sort/pagination, get, update, delete by owner or admin,
popular, stats, the per-key limit, export and import (our format, the
original product's export file and import request, multipart uploads,
hostile files), and the original product's lookup routes in its shapes."""
import json

import pytest

from conftest import start_demo_server, start_server
from test_health import assert_error

MODEL = "demo/tiny-bert-classification"
CODE_T = "tokenizer = AutoTokenizer.from_pretrained('demo/tiny-bert-classification')"
CODE_M = "model = AutoModelForSequenceClassification.from_pretrained('demo/tiny-bert-classification')"
CODE_F = ("def custom_function(text):\n    inputs = tokenizer(text, return_tensors='pt')\n"
          "    outputs = model(**inputs)\n    return {'prediction': outputs.logits.softmax(dim=1).tolist()}")
ROOMY = {"requests_per_minute": 1000000, "requests_per_hour": 100000000}


@pytest.fixture(scope="module")
def srv():
    s = start_demo_server("ctasks-exec")
    keys = {}
    for name, perms in [("alice", ["tasks:execute", "tasks:save"]),
                        ("bob", ["tasks:execute", "tasks:save"]),
                        ("reader", ["tasks:execute"]),
                        ("boss", ["tasks:execute", "tasks:save", "admin:read", "admin:write"])]:
        secret, doc = s.create_key(name=name, permissions=perms, rate_limits=ROOMY)
        keys[name] = (s.auth(secret), doc["_id"])
    s.keys = keys
    yield s
    s.stop()


def new_key(srv, name, perms=("tasks:execute", "tasks:save")):
    secret, doc = srv.create_key(name=name, permissions=perms, rate_limits=ROOMY)
    return srv.auth(secret), doc["_id"]


def task(name, **fields):
    t = {"name": name, "model_name": MODEL, "tokenizer_code": CODE_T, "model_code": CODE_M,
         "function_code": CODE_F}
    t.update(fields)
    return t


def save(srv, hdr, name, **fields):
    r = srv.post("/custom-tasks", json=task(name, **fields), headers=hdr)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def mine(srv, hdr, **params):
    r = srv.get("/custom-tasks", params={"mine": "true", "limit": 1000, **params}, headers=hdr)
    assert r.status_code == 200, r.text
    return r.json()["data"]


# ── save ──

def test_save_returns_the_stored_task(srv):
    hdr, key_id = srv.keys["alice"]
    t = save(srv, hdr, "Sentiment with logic", description="distilbert plus rules",
             tags=["sentiment", "nlp"], model_config={"max_length": 512, "padding": True})
    assert len(t["_id"]) == 24 and int(t["_id"], 16) >= 0
    assert t["name"] == "Sentiment with logic" and t["description"] == "distilbert plus rules"
    assert t["tags"] == ["sentiment", "nlp"] and t["model_name"] == MODEL
    assert t["tokenizer_code"] == CODE_T and t["model_code"] == CODE_M and t["function_code"] == CODE_F
    assert t["model_config"] == {"max_length": 512, "padding": True}
    assert t["usage_count"] == 0 and t["is_public"] is False
    assert t["execution_stats"] == {"avg_execution_time": 0, "success_rate": 0, "total_executions": 0}
    assert t["api_key_id"] == key_id
    assert t["created_at"].endswith("Z") and t["updated_at"] == t["created_at"]
    assert t["missing_models"] == []
    got = srv.get(f"/custom-tasks/{t['_id']}", headers=hdr).json()["data"]
    assert got["function_code"] == CODE_F and "missing_models" not in got


def test_save_reports_models_missing_from_the_cache(srv):
    hdr, _ = srv.keys["alice"]
    r = srv.post("/custom-tasks", json=task("uses two models", tokenizer_code=(
        "tokenizer = AutoTokenizer.from_pretrained(\"distilbert-base-uncased\")\n"
        "t2 = AutoTokenizer.from_pretrained('demo/tiny-bert-ner')")), headers=hdr)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["data"]["missing_models"] == ["distilbert-base-uncased"]
    assert "not in the model cache" in body["message"]
    r = srv.post("/custom-tasks", json=task("unknown main model", model_name="nobody/nothing"), headers=hdr)
    assert r.status_code == 201 and r.json()["data"]["missing_models"] == ["nobody/nothing"]


def test_save_needs_the_tasks_save_permission(srv):
    hdr, _ = srv.keys["reader"]
    body = assert_error(srv.post("/custom-tasks", json=task("nope"), headers=hdr), 403)
    assert "tasks:save" in body["detail"]
    assert_error(srv.post("/custom-tasks", json=task("nope")), 401)


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"description": "d" * 501}, "description"),
    ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
    ({"tags": ["x" * 51]}, "tags"),
    ({"tags": ["a,b"]}, "tags"),
    ({"tags": ["a", "a"]}, "tags"),
    ({"tags": [1]}, "tags"),
    ({"model_name": "bad name!"}, "model_name"),
    ({"function_code": None}, "function_code"),
    ({"function_code": "x" * 65537}, "function_code"),
    ({"is_public": "yes"}, "is_public"),
    ({"model_config": {"blob": "x" * 5000}}, "model_config"),
    ({"model_config": [1]}, "model_config"),
    ({"usage_count": 5}, "usage_count"),
    ({"colour": "blue"}, "colour"),
])
def test_save_refuses_bad_fields_naming_them(srv, change, field):
    hdr, _ = srv.keys["alice"]
    body = task("bad field task")
    body.update(change)
    if change.get("function_code", 1) is None:
        del body["function_code"]
    r = srv.post("/custom-tasks", json=body, headers=hdr)
    assert f"'{field}'" in assert_error(r, 400)["detail"]


def test_save_refuses_malformed_bodies(srv):
    hdr, _ = srv.keys["alice"]
    h = {**hdr, "Content-Type": "application/json"}
    assert "UTF-8" in assert_error(srv.post("/custom-tasks", data=b'{"name": "\xff"}', headers=h), 400)["error"]
    assert_error(srv.post("/custom-tasks", data=b'{"name": ', headers=h), 400)
    assert_error(srv.post("/custom-tasks", data=b'[1]', headers=h), 400)


def test_a_task_saved_in_a_session_records_the_session(srv):
    import requests
    secret, doc = srv.create_key(name="browser", permissions=("tasks:save",), rate_limits=ROOMY)
    web = requests.Session()
    r = web.post(srv.url + "/auth/login", json={"api_key": secret})
    assert r.status_code == 200, r.text
    r = web.post(srv.url + "/custom-tasks", json=task("from the studio"), headers={"X-Requested-With": "fetch"})
    assert r.status_code == 201, r.text
    t = r.json()["data"]
    assert t["api_key_id"] == doc["_id"] and t["created_by"]
    sessions = srv.get("/sessions", headers=srv.keys["boss"][0]).json()["data"]["sessions"]
    mine_ = [s for s in sessions if s["api_key_id"] == doc["_id"]]
    assert [s["session_id"] for s in mine_] == [t["created_by"]]
    assert {"action": "save_task", "task_id": t["_id"]}.items() <= next(
        e for e in mine_[0]["activity_log"] if e["action"] == "save_task").items()


def test_a_key_cannot_have_two_tasks_of_one_name(srv):
    hdr, _ = srv.keys["alice"]
    first = save(srv, hdr, "unique name")
    body = assert_error(srv.post("/custom-tasks", json=task("unique name"), headers=hdr), 409)
    assert first["_id"] in body["detail"] and "'name'" in body["detail"]
    # another key may use the name
    save(srv, srv.keys["bob"][0], "unique name")


def test_the_per_key_limit_holds(srv):
    hdr, _ = new_key(srv, "limited")
    admin = srv.keys["boss"][0]
    r = srv.request("PUT", "/settings/max_custom_tasks_per_user", json={"value": 2}, headers=admin)
    assert r.status_code == 200, r.text
    try:
        save(srv, hdr, "one")
        save(srv, hdr, "two")
        body = assert_error(srv.post("/custom-tasks", json=task("three"), headers=hdr), 403)
        assert "max_custom_tasks_per_user" in body["detail"] and "2" in body["detail"]
        imp = {"format": "bertstudio.custom_tasks", "version": 1, "tasks": [task("four")]}
        body = assert_error(srv.post("/custom-tasks/import", json=imp, headers=hdr), 403)
        assert "max_custom_tasks_per_user" in body["detail"]
        assert mine(srv, hdr)["total"] == 2
    finally:
        srv.request("PUT", "/settings/max_custom_tasks_per_user", json={"value": 50}, headers=admin)


def test_the_limit_and_unique_names_hold_under_concurrent_saves(srv):
    from concurrent.futures import ThreadPoolExecutor
    hdr, _ = new_key(srv, "racer")
    admin = srv.keys["boss"][0]
    assert srv.request("PUT", "/settings/max_custom_tasks_per_user", json={"value": 3},
                       headers=admin).status_code == 200
    try:
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda i: srv.post("/custom-tasks", json=task(f"race {i}"),
                                                     headers=hdr).status_code, range(12)))
        stored = mine(srv, hdr)["total"]
        assert stored <= 3 and codes.count(201) == stored and stored >= 1
        assert set(codes) <= {201, 403}
    finally:
        srv.request("PUT", "/settings/max_custom_tasks_per_user", json={"value": 50}, headers=admin)
    hdr, _ = new_key(srv, "same-name racer")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: srv.post("/custom-tasks", json=task("same"), headers=hdr).status_code,
                              range(8)))
    assert set(codes) <= {201, 409}
    assert codes.count(201) == mine(srv, hdr)["total"] <= 1


def test_search_of_punctuation_only_finds_nothing(srv):
    hdr, _ = srv.keys["alice"]
    for q in ("!!!", "  ", "*"):
        r = srv.get("/custom-tasks", params={"search": q}, headers=hdr)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["total"] == 0 and r.json()["data"]["tasks"] == []
    assert srv.get("/custom-tasks/search/%21%21", headers=hdr).json() == {"tasks": []}


# ── get, update, delete: visibility and ownership ──

def test_private_tasks_are_seen_by_their_owner_and_admins_only(srv):
    alice, _ = srv.keys["alice"]
    bob, _ = srv.keys["bob"]
    t = save(srv, alice, "private one")
    assert srv.get(f"/custom-tasks/{t['_id']}", headers=alice).status_code == 200
    boss = srv.keys["boss"][0]
    assert srv.get(f"/custom-tasks/{t['_id']}", headers=boss).status_code == 200
    assert_error(srv.get(f"/custom-tasks/{t['_id']}", headers=bob), 404)
    listed = lambda hdr, **p: [x["_id"] for x in srv.get("/custom-tasks", params={"limit": 1000, **p},
                                                          headers=hdr).json()["data"]["tasks"]]
    assert t["_id"] not in listed(boss) and t["_id"] in listed(boss, all="true")
    assert "admin:read" in assert_error(srv.get("/custom-tasks?all=true", headers=bob), 403)["detail"]
    assert_error(srv.get("/custom-tasks?all=yes", headers=boss), 400)
    assert t["_id"] not in [x["_id"] for x in srv.get("/custom-tasks", params={"limit": 1000},
                                                       headers=bob).json()["data"]["tasks"]]
    r = srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"is_public": True}, headers=alice)
    assert r.status_code == 200 and r.json()["data"]["is_public"] is True
    assert srv.get(f"/custom-tasks/{t['_id']}", headers=bob).json()["data"]["name"] == "private one"
    assert_error(srv.get("/custom-tasks/not-an-id", headers=bob), 400)
    assert_error(srv.get("/custom-tasks/" + "0" * 24, headers=bob), 404)


def test_update_by_owner_changes_only_the_given_fields(srv):
    alice, _ = srv.keys["alice"]
    t = save(srv, alice, "to update", tags=["a"], description="before")
    r = srv.request("PUT", f"/custom-tasks/{t['_id']}",
                    json={"description": "after", "tags": ["b", "c"], "model_config": {"max_length": 64}},
                    headers=alice)
    assert r.status_code == 200, r.text
    u = r.json()["data"]
    assert u["description"] == "after" and u["tags"] == ["b", "c"] and u["model_config"] == {"max_length": 64}
    assert u["name"] == "to update" and u["function_code"] == CODE_F and u["created_at"] == t["created_at"]
    assert u["updated_at"] >= t["updated_at"]
    r = srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"description": None}, headers=alice)
    assert "description" not in r.json()["data"]
    assert "'name'" in assert_error(srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"name": ""},
                                                headers=alice), 400)["detail"]
    assert "'usage_count'" in assert_error(srv.request("PUT", f"/custom-tasks/{t['_id']}",
                                                       json={"usage_count": 9}, headers=alice), 400)["detail"]
    save(srv, alice, "taken name")
    assert_error(srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"name": "taken name"}, headers=alice), 409)


def test_only_the_owner_or_admin_write_changes_a_task(srv):
    alice, _ = srv.keys["alice"]
    bob, _ = srv.keys["bob"]
    boss, _ = srv.keys["boss"]
    t = save(srv, alice, "shared", is_public=True)
    body = assert_error(srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"description": "mine now"},
                                    headers=bob), 403)
    assert "admin:write" in body["detail"]
    assert "admin:write" in assert_error(srv.request("DELETE", f"/custom-tasks/{t['_id']}", headers=bob),
                                         403)["detail"]
    r = srv.request("PUT", f"/custom-tasks/{t['_id']}", json={"description": "moderated"}, headers=boss)
    assert r.status_code == 200 and r.json()["data"]["description"] == "moderated"
    assert r.json()["data"]["api_key_id"] == srv.keys["alice"][1]
    r = srv.request("DELETE", f"/custom-tasks/{t['_id']}", headers=boss)
    assert r.status_code == 200 and r.json()["message"] == "Task deleted successfully"
    assert_error(srv.get(f"/custom-tasks/{t['_id']}", headers=alice), 404)
    own = save(srv, alice, "short lived")
    assert srv.request("DELETE", f"/custom-tasks/{own['_id']}", headers=alice).status_code == 200
    assert_error(srv.request("DELETE", f"/custom-tasks/{own['_id']}", headers=alice), 404)


def test_an_owner_who_lost_tasks_save_cannot_change_its_tasks(srv):
    hdr, key_id = new_key(srv, "demoted")
    t = save(srv, hdr, "kept")
    r = srv.request("PATCH", f"/api-keys/{key_id}", json={"permissions": ["tasks:execute"]},
                    headers=srv.keys["boss"][0])
    assert r.status_code == 200, r.text
    assert "tasks:save" in assert_error(srv.request("DELETE", f"/custom-tasks/{t['_id']}", headers=hdr),
                                        403)["detail"]
    assert srv.get(f"/custom-tasks/{t['_id']}", headers=hdr).status_code == 200


# ── list, popular, stats ──

@pytest.fixture(scope="module")
def catalogue(srv):
    """A key with six tasks of known words, tags, models and usage counts
    (usage counts come in through an import of our format)."""
    hdr, key_id = new_key(srv, "catalogue")
    rows = [("Sentiment scorer", "rates reviews", ["sentiment", "nlp"], MODEL, 5, True),
            ("Sentiment batch", "many reviews at once", ["sentiment"], MODEL, 50, True),
            ("Entity finder", "finds people", ["ner", "nlp"], "demo/tiny-bert-ner", 7, False),
            ("Answer picker", "question answering", ["qa"], "demo/tiny-bert-qa", 0, True),
            ("Mask filler", "fills blanks", ["mlm"], "demo/tiny-bert-mlm", 30, False),
            ("Embedder", "vectors for search", [], "demo/tiny-bert-embeddings", 1, True)]
    tasks = [task(n, description=d, tags=t, model_name=m, usage_count=u, is_public=p)
             for n, d, t, m, u, p in rows]
    r = srv.post("/custom-tasks/import", json={"format": "bertstudio.custom_tasks", "version": 1,
                                               "tasks": tasks}, headers=hdr)
    assert r.status_code == 201, r.text
    return hdr, key_id, rows


def names(tasks):
    return [t["name"] for t in tasks]


def test_list_searches_names_and_descriptions(srv, catalogue):
    hdr, _, _ = catalogue
    got = mine(srv, hdr, search="sentiment")
    assert sorted(names(got["tasks"])) == ["Sentiment batch", "Sentiment scorer"] and got["total"] == 2
    assert names(mine(srv, hdr, search="people")["tasks"]) == ["Entity finder"]
    assert mine(srv, hdr, search="zebra")["total"] == 0
    assert mine(srv, hdr, search='"(*) OR NOT')["total"] == 0


def test_list_filters_by_tags_and_model(srv, catalogue):
    hdr, _, _ = catalogue
    assert sorted(names(mine(srv, hdr, tags="nlp")["tasks"])) == ["Entity finder", "Sentiment scorer"]
    assert sorted(names(mine(srv, hdr, tags="qa, mlm")["tasks"])) == ["Answer picker", "Mask filler"]
    assert names(mine(srv, hdr, model="demo/tiny-bert-ner")["tasks"]) == ["Entity finder"]
    assert names(mine(srv, hdr, tags="sentiment", model=MODEL, sort="usage_count")["tasks"]) == [
        "Sentiment batch", "Sentiment scorer"]
    assert_error(srv.get("/custom-tasks", params={"tags": ",".join(f"t{i}" for i in range(11))},
                         headers=hdr), 400)


def test_list_sorts_and_pages(srv, catalogue):
    hdr, _, rows = catalogue
    by_usage = [r[0] for r in sorted(rows, key=lambda r: -r[4])]
    assert names(mine(srv, hdr, sort="usage_count")["tasks"]) == by_usage
    newest = mine(srv, hdr, sort="created_at")["tasks"]
    assert [t["created_at"] for t in newest] == sorted([t["created_at"] for t in newest], reverse=True)
    pages = [mine(srv, hdr, sort="usage_count", limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [names(p["tasks"]) for p in pages] == [by_usage[0:2], by_usage[2:4], by_usage[4:6], []]
    assert all(p["total"] == 6 and p["limit"] == 2 for p in pages)
    for bad in ({"sort": "name"}, {"limit": 0}, {"limit": 1001}, {"offset": -1}, {"mine": "yes"},
                {"model": "bad model"}, {"search": "s" * 201}):
        assert_error(srv.get("/custom-tasks", params=bad, headers=hdr), 400)


def test_popular_lists_public_tasks_by_usage(srv, catalogue):
    hdr, _, rows = catalogue
    bob, _ = srv.keys["bob"]
    pop = srv.get("/custom-tasks/popular", params={"limit": 100}, headers=bob).json()["data"]["tasks"]
    assert all(t["is_public"] for t in pop)
    counts = [t["usage_count"] for t in pop]
    assert counts == sorted(counts, reverse=True)
    public = [r[0] for r in sorted(rows, key=lambda r: -r[4]) if r[5]]
    assert [t["name"] for t in pop if t["api_key_id"] == catalogue[1]] == public
    assert "Mask filler" not in names(pop)
    assert len(srv.get("/custom-tasks/popular", params={"limit": 2}, headers=bob).json()["data"]["tasks"]) == 2
    assert_error(srv.get("/custom-tasks/popular", params={"limit": 101}, headers=bob), 400)


def test_stats_count_the_visible_tasks():
    s = start_server()
    try:
        a, _ = s.create_key(name="a", permissions=("tasks:save",), rate_limits=ROOMY)
        b, _ = s.create_key(name="b", permissions=("tasks:save",), rate_limits=ROOMY)
        ha, hb = s.auth(a), s.auth(b)
        for name, tags, model, public, hdr in [("a1", ["x", "y"], "m/one", False, ha),
                                               ("a2", ["x"], "m/one", True, ha),
                                               ("b1", ["z"], "m/two", False, hb)]:
            r = s.post("/custom-tasks", json={"name": name, "tags": tags, "model_name": model,
                                              "function_code": "def custom_function(t): return t",
                                              "is_public": public}, headers=hdr)
            assert r.status_code == 201, r.text
        st = s.get("/custom-tasks/stats", headers=hb).json()["data"]
        assert st["total_tasks"] == 2 and st["own_tasks"] == 1 and st["public_tasks"] == 1
        assert st["max_custom_tasks_per_user"] == 50 and st["total_usage"] == 0
        assert sorted((m["model_name"], m["count"]) for m in st["models"]) == [("m/one", 1), ("m/two", 1)]
        assert sorted((t["tag"], t["count"]) for t in st["tags"]) == [("x", 1), ("z", 1)]
        st = s.get("/custom-tasks/stats", headers=s.auth()).json()["data"]  # own + public
        assert st["total_tasks"] == 1 and st["own_tasks"] == 0
        assert "admin:read" in assert_error(s.get("/custom-tasks/stats?all=true", headers=ha), 403)["detail"]
        st = s.get("/custom-tasks/stats?all=true", headers=s.auth()).json()["data"]
        assert st["total_tasks"] == 3 and st["own_tasks"] == 0
        assert sorted((t["tag"], t["count"]) for t in st["tags"]) == [("x", 2), ("y", 1), ("z", 1)]
    finally:
        s.stop()


# ── export and import ──

CONTENT = ["name", "description", "tags", "model_name", "tokenizer_code", "model_code", "function_code",
           "is_public", "model_config", "usage_count", "execution_stats", "created_at", "updated_at"]


def test_export_then_import_round_trips_every_field(srv):
    alice, _ = srv.keys["alice"]
    a = save(srv, alice, "round trip one", description="é ✓ 日本", tags=["x", "ü"], is_public=True,
             model_config={"max_length": 128, "nested": {"k": [1, 2.5, None, "s"]}})
    stats = {"avg_execution_time": 0.125, "success_rate": 0.96, "total_executions": 25}
    imp = {"format": "bertstudio.custom_tasks", "version": 1, "tasks": [task(
        "round trip two", usage_count=25, execution_stats=stats, created_at="2024-01-15T10:30:00.000Z",
        updated_at="2024-02-01T08:00:00.000Z")]}
    r = srv.post("/custom-tasks/import", json=imp, headers=alice)
    assert r.status_code == 201, r.text
    b_id = r.json()["data"]["tasks"][0]["_id"]
    r = srv.post("/custom-tasks/export", json={"task_ids": [a["_id"], b_id]}, headers=alice)
    assert r.status_code == 200, r.text
    exp = r.json()["data"]
    assert exp["format"] == "bertstudio.custom_tasks" and exp["version"] == 1 and exp["count"] == 2
    assert exp["exported_at"].endswith("Z")
    assert [t["_id"] for t in exp["tasks"]] == [a["_id"], b_id]
    assert all("api_key_id" not in t and "created_by" not in t for t in exp["tasks"])
    assert exp["tasks"][1]["execution_stats"] == stats and exp["tasks"][1]["usage_count"] == 25
    assert exp["tasks"][1]["created_at"] == "2024-01-15T10:30:00.000Z"
    # into another key, as a file upload of the whole saved answer
    erin, erin_id = new_key(srv, "erin")
    r = srv.post("/custom-tasks/import", files={"file": ("tasks.json", r.content, "application/json")},
                 headers=erin)
    assert r.status_code == 201, r.text
    rep = r.json()["data"]
    assert rep["imported"] == 2 and rep["skipped"] == 0
    assert [t["index"] for t in rep["tasks"]] == [0, 1]
    again = srv.post("/custom-tasks/export", json={"task_ids": [t["_id"] for t in rep["tasks"]]},
                     headers=erin).json()["data"]
    for before, after in zip(exp["tasks"], again["tasks"]):
        for f in CONTENT:
            assert after.get(f) == before.get(f), f
        assert after["_id"] != before["_id"]
    owned = mine(srv, erin)["tasks"]
    assert all(t["api_key_id"] == erin_id for t in owned) and len(owned) == 2


def test_export_without_ids_is_the_keys_own_tasks(srv):
    hdr, _ = new_key(srv, "exporter")
    save(srv, hdr, "e1")
    save(srv, hdr, "e2")
    exp = srv.post("/custom-tasks/export", headers=hdr).json()["data"]
    assert sorted(names(exp["tasks"])) == ["e1", "e2"]


def test_export_refuses_ids_it_cannot_show(srv):
    alice, _ = srv.keys["alice"]
    bob, _ = srv.keys["bob"]
    private = save(srv, alice, "not for bob")
    body = assert_error(srv.post("/custom-tasks/export", json={"task_ids": [private["_id"]]}, headers=bob), 404)
    assert "task_ids[0]" in body["detail"]
    assert "task_ids[1]" in assert_error(srv.post("/custom-tasks/export", json={"task_ids": [
        private["_id"], "zz"]}, headers=alice), 400)["detail"]
    assert_error(srv.post("/custom-tasks/export", json={"task_ids": ["0" * 24] * 1001}, headers=alice), 400)


ORIGINAL_FILE = [
    {"id": "65a4f0c2e4b0a1b2c3d4e5f6", "name": "Original sentiment", "description": "from the old studio",
     "model_id": "distilbert-base-uncased", "tokenizer_code": CODE_T, "model_code": CODE_M,
     "function_code": CODE_F, "tags": "sentiment, nlp", "created_at": "2024-01-15T10:30:00.123456",
     "updated_at": "2024-01-15T10:30:00.123456"},
    {"id": "65a4f0c2e4b0a1b2c3d4e5f7", "name": "Original untagged", "description": "",
     "model_id": "dslim/bert-base-NER", "tokenizer_code": "", "model_code": "",
     "function_code": "def custom_function(text):\n    return text", "tags": None,
     "created_at": "2024-01-16T10:30:00", "updated_at": "2024-01-16T10:30:00"},
]


def test_import_reads_the_original_products_export_file(srv):
    hdr, _ = new_key(srv, "migrant")
    r = srv.post("/custom-tasks/import", files={"file": ("custom-tasks-2024-01-16.json",
                                                         json.dumps(ORIGINAL_FILE), "application/json")},
                 headers=hdr)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["imported"] == 2
    assert sorted(data["missing_models"]) == ["distilbert-base-uncased", "dslim/bert-base-NER"]
    got = {t["name"]: t for t in mine(srv, hdr)["tasks"]}
    one, two = got["Original sentiment"], got["Original untagged"]
    assert one["model_name"] == "distilbert-base-uncased" and one["tags"] == ["sentiment", "nlp"]
    assert one["description"] == "from the old studio" and one["function_code"] == CODE_F
    assert one["tokenizer_code"] == CODE_T and one["model_code"] == CODE_M
    assert two["tags"] == [] and two["model_name"] == "dslim/bert-base-NER"
    # the original's own shape comes back from its export route
    orig = srv.get("/custom-tasks/export", headers=hdr).json()
    mine_orig = {t["name"]: t for t in orig if t["name"].startswith("Original")}
    for src in ORIGINAL_FILE:
        out = mine_orig[src["name"]]
        for f in ("name", "description", "model_id", "tokenizer_code", "model_code", "function_code"):
            assert out[f] == src[f], f
        assert (out["tags"] or "").replace(" ", "") == (src["tags"] or "").replace(" ", "")


def test_import_answers_the_original_request_in_its_shape(srv):
    hdr, _ = new_key(srv, "old-client")
    tasks = [dict(t, name=t["name"] + " (req)") for t in ORIGINAL_FILE]
    r = srv.post("/custom-tasks/import", json={"tasks": tasks}, headers=hdr)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Successfully imported 2 tasks"}
    bad = [dict(ORIGINAL_FILE[0], name="ok"), dict(ORIGINAL_FILE[1], model_id=7)]
    r = srv.post("/custom-tasks/import", json={"tasks": bad}, headers=hdr)
    assert r.status_code == 400 and set(r.json()) == {"detail"}
    assert "tasks[1]" in r.json()["detail"] and "model_id" in r.json()["detail"]
    assert mine(srv, hdr)["total"] == 2


def ours(*tasks):
    return {"format": "bertstudio.custom_tasks", "version": 1, "tasks": list(tasks)}


BAD_UTF8 = b'{"version": 1,\n "format": "bertstudio.custom_\xff\xfe", "tasks": []}'


def upload(raw):
    return {"files": {"file": ("tasks.json", raw, "application/json")}}


@pytest.mark.parametrize("kind, status, words", [
    ("too_many", 400, ["at most 1000"]),
    ("wrong_type", 400, ["tasks[1]", "'name'"]),
    ("not_object", 400, ["tasks[0]", "object"]),
    ("unknown_field", 400, ["tasks[0]", "'owner'"]),
    ("bad_stats", 400, ["tasks[0]", "success_rate"]),
    ("bad_date", 400, ["tasks[0]", "created_at"]),
    ("huge_code", 400, ["tasks[1]", "'function_code'"]),
    ("duplicate", 409, ["tasks[2]", "'name'", "tasks[0]"]),
    ("taken", 409, ["tasks[0]", "'name'"]),
    ("version", 400, ["version 2"]),
    ("count", 400, ["'count' is 3", "holds 1"]),
    ("format", 400, ["format"]),
    ("shape", 400, ["expected"]),
    ("bad_utf8_file", 400, ["UTF-8", "byte %d" % BAD_UTF8.index(b"\xff"), "line 2"]),
    ("malformed_file", 400, ["line 1"]),
    ("deep_file", 400, ["nest"]),
    ("no_file_part", 400, ["file"]),
    ("no_boundary", 400, ["boundary"]),
])
def test_hostile_imports_are_refused_and_store_nothing(srv, kind, status, words):
    hdr, _ = new_key(srv, "hostile-" + kind)
    save(srv, hdr, "already here")
    before = mine(srv, hdr)["tasks"]
    good = task("fine")
    kw = {}
    if kind == "too_many":
        kw["json"] = ours(*[task(f"t{i}") for i in range(1001)])
    elif kind == "wrong_type":
        kw["json"] = ours(good, task(5))
    elif kind == "not_object":
        kw["json"] = ours("a task")
    elif kind == "unknown_field":
        kw["json"] = ours(task("x", owner="me"), good)
    elif kind == "bad_stats":
        kw["json"] = ours(task("x", execution_stats={"success_rate": 2}))
    elif kind == "bad_date":
        kw["json"] = ours(task("x", created_at="yesterday"))
    elif kind == "huge_code":
        kw["json"] = ours(good, task("x", function_code="x" * 70000))
    elif kind == "duplicate":
        kw["json"] = ours(good, task("other"), task("fine"))
    elif kind == "taken":
        kw["json"] = ours(task("already here"), good)
    elif kind == "version":
        kw["json"] = dict(ours(good), version=2)
    elif kind == "count":
        kw["json"] = dict(ours(good), count=3)
    elif kind == "format":
        kw["json"] = dict(ours(good), format="something-else")
    elif kind == "shape":
        kw["json"] = {"items": [good]}
    elif kind == "bad_utf8_file":
        kw.update(upload(BAD_UTF8))
    elif kind == "malformed_file":
        kw.update(upload(b'{"format": "bertstudio.custom_tasks", "version": 1, "tasks": [}'))
    elif kind == "deep_file":
        kw.update(upload(b"[" * 100 + b"]" * 100))
    elif kind == "no_file_part":
        kw["headers_extra"] = {"Content-Type": "multipart/form-data; boundary=abc"}
        kw["data"] = b'--abc\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n--abc--\r\n'
    elif kind == "no_boundary":
        kw["headers_extra"] = {"Content-Type": "multipart/form-data"}
        kw["data"] = b"--x\r\n\r\n"
    headers = {**hdr, **kw.pop("headers_extra", {})}
    r = srv.post("/custom-tasks/import", headers=headers, **kw)
    body = assert_error(r, status)
    for w in words:
        assert w in body["detail"], (w, body)
    assert mine(srv, hdr)["tasks"] == before


def test_import_name_conflicts_can_be_skipped_or_renamed(srv):
    hdr, _ = new_key(srv, "conflicts")
    save(srv, hdr, "dup")
    r = srv.post("/custom-tasks/import?on_conflict=skip", json=ours(task("dup"), task("new")), headers=hdr)
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    assert d["imported"] == 1 and d["skipped"] == 1 and d["tasks"][0]["skipped"] is True
    r = srv.post("/custom-tasks/import?on_conflict=rename", json=ours(task("dup"), task("dup")), headers=hdr)
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    assert [t["name"] for t in d["tasks"]] == ["dup (2)", "dup (3)"]
    assert all(t["renamed_from"] == "dup" for t in d["tasks"])
    assert sorted(names(mine(srv, hdr)["tasks"])) == ["dup", "dup (2)", "dup (3)", "new"]
    long = "é" * 100
    save(srv, hdr, long)
    r = srv.post("/custom-tasks/import?on_conflict=rename", json=ours(task(long)), headers=hdr)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["tasks"][0]["name"] == "é" * 96 + " (2)"
    assert_error(srv.post("/custom-tasks/import?on_conflict=merge", json=ours(task("z")), headers=hdr), 400)


def test_import_needs_tasks_save(srv):
    body = assert_error(srv.post("/custom-tasks/import", json=ours(task("x")), headers=srv.keys["reader"][0]), 403)
    assert "tasks:save" in body["detail"]


# ── the original product's routes and shapes ──

def test_original_save_and_update_get_the_originals_answers(srv):
    hdr, _ = new_key(srv, "legacy")
    body = {"name": "legacy task", "description": "d", "model_id": MODEL, "tokenizer_code": CODE_T,
            "model_code": CODE_M, "function_code": CODE_F, "tags": "a, b", "batch_mode": True}
    r = srv.post("/custom-tasks", json=body, headers=hdr)
    assert r.status_code == 200, r.text
    msg = r.json()["message"]
    assert set(r.json()) == {"message"} and msg.startswith("Task 'legacy task' saved successfully with ID ")
    tid = msg.rsplit(" ", 1)[1]
    t = srv.get(f"/custom-tasks/{tid}", headers=hdr).json()["data"]
    assert t["tags"] == ["a", "b"] and t["model_name"] == MODEL and t["model_config"] == {"batch_mode": True}
    r = srv.request("PUT", f"/custom-tasks/{tid}", json=dict(body, description="d2", tags=None,
                                                             batch_mode=None), headers=hdr)
    assert r.status_code == 200 and r.json() == {"message": "Task 'legacy task' updated successfully"}
    t = srv.get(f"/custom-tasks/{tid}", headers=hdr).json()["data"]
    assert t["description"] == "d2" and t["tags"] == [] and "model_config" not in t
    r = srv.post("/custom-tasks", json=dict(body, name="legacy 2", model_id="bad id!"), headers=hdr)
    assert r.status_code == 400 and set(r.json()) == {"detail"} and "model_id" in r.json()["detail"]
    r = srv.post("/custom-tasks", json=body, headers=hdr)
    assert r.status_code == 409 and set(r.json()) == {"detail"}
    missing = {k: v for k, v in body.items() if k != "function_code"}
    r = srv.post("/custom-tasks", json=missing, headers=hdr)
    assert r.status_code == 400 and "function_code" in r.json()["detail"]


def test_original_lookups_answer_in_the_originals_shape(srv, catalogue):
    hdr, _, _ = catalogue
    keys = {"id", "name", "description", "model_id", "tokenizer_code", "model_code", "function_code", "tags",
            "created_at", "updated_at", "batch_mode"}
    r = srv.get("/custom-tasks/search/sentiment", headers=hdr)
    assert r.status_code == 200, r.text
    found = r.json()["tasks"]
    assert set(r.json()) == {"tasks"} and all(set(t) == keys for t in found)
    assert {"Sentiment scorer", "Sentiment batch"} <= set(names(found))
    assert "Entity finder" in names(srv.get("/custom-tasks/search/ner", headers=hdr).json()["tasks"])  # a tag
    scorer = next(t for t in found if t["name"] == "Sentiment scorer")
    assert scorer["tags"] == "sentiment,nlp" and scorer["model_id"] == MODEL and scorer["batch_mode"] is None
    by_model = srv.get("/custom-tasks/model/demo/tiny-bert-ner", headers=hdr).json()["tasks"]
    assert "Entity finder" in names(by_model) and all(t["model_id"] == "demo/tiny-bert-ner" for t in by_model)
    solo = save(srv, hdr, "solo model", model_name="solo-model")
    assert names(srv.get("/custom-tasks/model/solo-model", headers=hdr).json()["tasks"]) == ["solo model"]
    srv.request("DELETE", f"/custom-tasks/{solo['_id']}", headers=hdr)
    by_tags = srv.get("/custom-tasks/tags/qa,mlm", headers=hdr).json()["tasks"]
    assert {"Answer picker", "Mask filler"} <= set(names(by_tags))
    assert all(set(t["tags"].split(",")) & {"qa", "mlm"} for t in by_tags)
    assert srv.get("/custom-tasks/tags/%20,%20", headers=hdr).json() == {"tasks": []}
    for bad in ("/custom-tasks/search/%FF", "/custom-tasks/tags/a,%FF", "/custom-tasks/model/%FF"):
        r = srv.get(bad, headers=hdr)
        assert r.status_code == 400 and set(r.json()) == {"detail"}, bad
    assert srv.get("/custom-tasks/search/sentiment").status_code == 401
