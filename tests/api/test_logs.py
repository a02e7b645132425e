"""Execution logs written by real task runs (demo models of the fixtures):
GET /logs with its filters, GET /logs/stats by task type, model and day,
the session's task_execution activity, privacy of the input text, and the
purge counts including logs."""
import datetime
import os
import time

import pytest
import requests

from conftest import FIXTURES, start_server
from test_health import assert_error

TOK = "demo/tiny-bert-ner"
CLS = "demo/tiny-bert-classification"


def run(srv, path, body, headers, session=None):
    """POST a task, honouring 503 + Retry-After while the model loads."""
    end = time.monotonic() + 60
    while True:
        if session is not None:
            r = session.post(srv.url + path, json=body, headers=headers, timeout=60)
        else:
            r = srv.post(path, json=body, headers=headers)
        if r.status_code != 503 or time.monotonic() > end:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")) / 10)


@pytest.fixture(scope="module")
def lsrv():
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    secret, doc = srv.create_key("logger", permissions=["tasks:execute"],
                                 rate_limits={"requests_per_minute": 100000, "requests_per_hour": 1000000})
    srv.user, srv.user_id = secret, doc["_id"]
    # Load the models first, with the admin key: while a model loads, task
    # routes answer 503 and log that attempt too, which would make the
    # counts below depend on loading time. Room for all three models.
    assert srv.request("PUT", "/settings/max_loaded_models", json={"value": 8}, headers=srv.auth()).status_code == 200
    for path, body in (("/tokenize", {"text": "warm", "model_name": TOK}),
                       ("/tasks/classification", {"text": "warm", "model_name": CLS}),
                       ("/tasks/fill-mask", {"text": "warm [MASK]", "model_name": "demo/tiny-bert-mlm"})):
        assert run(srv, path, body, srv.auth()).status_code == 200
    h = {**srv.auth(secret), "User-Agent": "logs-test/1.0"}
    for i in range(3):
        assert run(srv, "/tokenize", {"text": f"hello world {i}", "model_name": TOK}, h).status_code == 200
    assert run(srv, "/tasks/classification", {"text": "I love it", "model_name": CLS}, h).status_code == 200
    r = run(srv, "/tasks/fill-mask", {"text": "no mask here", "model_name": "demo/tiny-bert-mlm"}, h)
    assert r.status_code in (400, 422), r.text  # a failed run is logged too
    yield srv
    srv.stop()


def logs(srv, **params):
    r = srv.get("/logs", params=params, headers=srv.auth())
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_logs_list_and_filters(lsrv):
    data = logs(lsrv, api_key_id=lsrv.user_id)
    assert data["total"] == 5 and len(data["logs"]) == 5
    newest = data["logs"][0]
    assert newest["task_type"] == "fill-mask" and newest["status"] == "error" and newest["error_message"]
    assert [l["timestamp"] for l in data["logs"]] == sorted((l["timestamp"] for l in data["logs"]), reverse=True)
    tok = logs(lsrv, api_key_id=lsrv.user_id, task_type="tokenize")
    assert tok["total"] == 3
    l = tok["logs"][0]
    assert l["model_name"] == TOK and l["status"] == "success"
    assert l["user_agent"] == "logs-test/1.0" and l["ip_address"] == "127.0.0.0"
    assert l["execution_time"] >= 0
    # log_input_text is off: the text is not kept, only its length and a hash.
    assert "input_text" not in l and l["input_length"] == len("hello world 2") and l["input_hash"]
    assert logs(lsrv, api_key_id=lsrv.user_id, model_name=CLS)["total"] == 1
    assert logs(lsrv, api_key_id=lsrv.user_id, status="error")["total"] == 1
    page = logs(lsrv, api_key_id=lsrv.user_id, limit=2, offset=1)
    assert len(page["logs"]) == 2 and page["total"] == 5
    assert page["logs"][0]["_id"] == data["logs"][1]["_id"]
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    assert logs(lsrv, api_key_id=lsrv.user_id, since=tomorrow)["total"] == 0
    assert logs(lsrv, api_key_id=lsrv.user_id, until=tomorrow)["total"] == 5
    assert_error(lsrv.get("/logs", params={"since": tomorrow, "until": "2000-01-01"}, headers=lsrv.auth()), 400)


def test_logs_stats(lsrv):
    def stats(**params):
        r = lsrv.get("/logs/stats", params={"api_key_id": lsrv.user_id, **params}, headers=lsrv.auth())
        assert r.status_code == 200, r.text
        return r.json()["data"]

    by_type = stats()
    assert by_type["group_by"] == "task_type"
    groups = {g["_id"]: g for g in by_type["groups"]}
    assert groups["tokenize"]["count"] == 3
    assert groups["tokenize"]["success_rate"] == 1.0
    assert groups["fill-mask"]["success_rate"] == 0.0
    g = groups["tokenize"]
    assert 0 <= g["p50_execution_time"] <= g["p95_execution_time"]
    assert g["avg_execution_time"] >= 0
    by_model = {g["_id"]: g for g in stats(group_by="model_name")["groups"]}
    assert by_model[CLS]["count"] == 1
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    by_day = stats(group_by="day", since=today)["groups"]
    assert [g["_id"] for g in by_day] == [today] and by_day[0]["count"] == 5
    assert stats(task_type="tokenize")["groups"][0]["_id"] == "tokenize"
    assert_error(lsrv.get("/logs/stats", params={"group_by": "ip"}, headers=lsrv.auth()), 400)


def test_input_text_kept_when_the_setting_says_so(lsrv):
    r = lsrv.request("PUT", "/settings/log_input_text", json={"value": True}, headers=lsrv.auth())
    assert r.status_code == 200
    try:
        h = {**lsrv.auth(lsrv.user), "User-Agent": "logs-text/1.0"}
        assert run(lsrv, "/tokenize", {"text": "keep this text", "model_name": TOK}, h).status_code == 200
        mine = [l for l in logs(lsrv, task_type="tokenize")["logs"] if l.get("user_agent") == "logs-text/1.0"]
        assert mine and mine[0]["input_text"] == "keep this text"
    finally:
        lsrv.request("PUT", "/settings/log_input_text", json={"value": False}, headers=lsrv.auth())


def test_session_records_task_executions(lsrv):
    s = requests.Session()
    assert s.post(lsrv.url + "/auth/login", json={"api_key": lsrv.user}, timeout=30).status_code == 200
    r = run(lsrv, "/tokenize", {"text": "from the studio", "model_name": TOK}, {"X-Requested-With": "fetch"}, session=s)
    assert r.status_code == 200, r.text
    sessions = lsrv.get("/sessions", params={"active": "true"}, headers=lsrv.auth()).json()["data"]["sessions"]
    mine = [x for x in sessions if x["api_key_id"] == lsrv.user_id]
    assert len(mine) == 1
    actions = [(e["action"], e["endpoint"]) for e in mine[0]["activity_log"]]
    assert actions == [("login", "/auth/login"), ("task_execution", "/tokenize")]
    # The log of that run carries the session's public id (its hash).
    withsess = [l for l in logs(lsrv, api_key_id=lsrv.user_id)["logs"] if l.get("session_id")]
    assert withsess and withsess[0]["session_id"] == mine[0]["session_id"]
    assert s.cookies.get("bs_session") not in str(withsess)


def test_purge_counts_logs(lsrv):
    secret, doc = lsrv.create_key("short-lived", permissions=["tasks:execute"])
    h = lsrv.auth(secret)
    for i in range(2):
        assert run(lsrv, "/tokenize", {"text": f"bye {i}", "model_name": TOK}, h).status_code == 200
    s = requests.Session()
    s.post(lsrv.url + "/auth/login", json={"api_key": secret}, timeout=30)
    assert run(lsrv, "/tokenize", {"text": "bye s", "model_name": TOK}, {"X-Requested-With": "x"}, session=s).status_code == 200
    r = lsrv.request("DELETE", "/admin/purge", params={"api_key_id": doc["_id"]}, headers=lsrv.auth())
    assert r.status_code == 200, r.text
    assert r.json()["data"]["deleted"] == {"sessions": 1, "custom_tasks": 0, "execution_logs": 3, "api_keys": 1}
    assert logs(lsrv, api_key_id=doc["_id"])["total"] == 0
