"""API keys over HTTP: create (secret shown once), list, get, update,
revoke; batched usage statistics; the CLI's keys create/list; GDPR purge;
sessions listing; metrics; retention sweep."""
import re
import subprocess
import time

import requests

from conftest import BIN, start_server
from test_health import assert_error


def test_create_shows_the_secret_once(server):
    r = server.post("/api-keys", json={"name": "ci", "description": "for CI", "permissions": ["tasks:execute", "tasks:save"],
                                       "rate_limits": {"requests_per_minute": 10, "requests_per_hour": 100,
                                                       "custom_tasks_per_hour": 5}},
                    headers=server.auth())
    assert r.status_code == 201, r.text
    body = r.json()
    assert "not shown again" in body["message"]
    doc = body["data"]
    secret = doc["api_key"]
    assert re.fullmatch(r"ak_[0-9A-Za-z]{43}", secret)
    assert re.fullmatch(r"[0-9a-f]{24}", doc["_id"])
    assert doc["name"] == "ci" and doc["description"] == "for CI"
    assert doc["permissions"] == ["tasks:execute", "tasks:save"]
    assert doc["rate_limits"]["custom_tasks_per_hour"] == 5
    assert doc["is_active"] is True
    assert doc["key_prefix"] == secret[:8]
    got = server.get(f"/api-keys/{doc['_id']}", headers=server.auth()).json()["data"]
    assert "api_key" not in got
    assert got["name"] == "ci"
    listed = server.get("/api-keys", headers=server.auth()).json()["data"]["api_keys"]
    assert doc["_id"] in [k["_id"] for k in listed]
    assert all("api_key" not in k for k in listed)


def test_list_pagination(server):
    for i in range(3):
        server.create_key(f"page-{i}")
    page = server.get("/api-keys", params={"limit": 2, "offset": 1}, headers=server.auth()).json()["data"]
    assert len(page["api_keys"]) == 2 and page["limit"] == 2 and page["offset"] == 1
    assert_error(server.get("/api-keys", params={"limit": 0}, headers=server.auth()), 400)


def test_update_fields(server):
    _, doc = server.create_key("before")
    r = server.request("PATCH", f"/api-keys/{doc['_id']}",
                       json={"name": "after", "description": "d", "permissions": ["admin:read"],
                             "rate_limits": {"requests_per_minute": 7}},
                       headers=server.auth())
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["name"] == "after" and d["permissions"] == ["admin:read"]
    assert d["rate_limits"]["requests_per_minute"] == 7
    assert_error(server.request("PATCH", f"/api-keys/{doc['_id']}", json={"api_key": "ak_x"}, headers=server.auth()), 400)
    assert_error(server.request("PATCH", f"/api-keys/{doc['_id']}", json={"usage_stats": {}}, headers=server.auth()), 400)


def test_permissions_change_applies_at_once(server):
    secret, doc = server.create_key("grow", permissions=["tasks:execute"])
    assert_error(server.get("/api-keys", headers=server.auth(secret)), 403)
    server.request("PATCH", f"/api-keys/{doc['_id']}", json={"permissions": ["admin:read"]}, headers=server.auth())
    assert server.get("/api-keys", headers=server.auth(secret)).status_code == 200


def test_usage_stats_are_batched_and_anonymized(server):
    secret, doc = server.create_key("counted")
    for _ in range(5):
        assert server.get("/auth/check", headers=server.auth(secret)).status_code == 200
    got = server.get(f"/api-keys/{doc['_id']}", headers=server.auth()).json()["data"]
    stats = got["usage_stats"]
    assert stats["total_requests"] == 5
    assert stats["requests_today"] == 5
    assert stats["last_request_ip"] == "127.0.0.0"  # last octet zeroed
    assert got["last_used"]


def test_cli_keys_create_and_list(tmp_path):
    data = str(tmp_path)
    out = subprocess.run([BIN, "keys", "create", "--admin", "--name", "ops", "--data-dir", data],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = [l for l in out.stdout.splitlines() if "ak_" in l][0]
    secret = line[line.index("ak_"):].split()[0]
    out = subprocess.run([BIN, "keys", "list", "--data-dir", data], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ops" in out.stdout and "admin:write" in out.stdout
    assert secret not in out.stdout and secret[:8] in out.stdout
    bad = subprocess.run([BIN, "keys", "frobnicate"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    # A server on that store creates no other admin key and accepts this one.
    srv = start_server(data_dir=data, relaxed=False)
    try:
        assert srv.admin_key is None
        r = srv.get("/auth/check", headers={"X-API-Key": secret})
        assert r.status_code == 200 and r.json()["data"]["name"] == "ops"
    finally:
        srv.stop()


def test_purge_deletes_everything_of_a_key(server):
    secret, doc = server.create_key("gdpr", permissions=["tasks:execute"])
    for _ in range(2):
        s = requests.Session()
        assert s.post(server.url + "/auth/login", json={"api_key": secret}, timeout=30).status_code == 200
    r = server.request("DELETE", "/admin/purge", params={"api_key_id": doc["_id"]}, headers=server.auth())
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["api_key_id"] == doc["_id"]
    assert data["deleted"]["sessions"] == 2
    assert data["deleted"]["api_keys"] == 1
    assert data["deleted"]["custom_tasks"] == 0
    assert data["deleted"]["execution_logs"] == 0
    assert_error(server.get(f"/api-keys/{doc['_id']}", headers=server.auth()), 404)
    assert_error(server.get("/auth/check", headers=server.auth(secret)), 401)
    sessions = server.get("/sessions", params={"limit": 1000}, headers=server.auth()).json()["data"]["sessions"]
    assert doc["_id"] not in [x["api_key_id"] for x in sessions]
    # Purging again: the key is gone.
    assert_error(server.request("DELETE", "/admin/purge", params={"api_key_id": doc["_id"]}, headers=server.auth()), 404)
    assert_error(server.request("DELETE", "/admin/purge", headers=server.auth()), 400)
    assert_error(server.request("DELETE", "/admin/purge", params={"api_key_id": "x' OR 1=1"}, headers=server.auth()), 400)


def test_purge_can_keep_the_key(server):
    secret, doc = server.create_key("keep-me")
    requests.post(server.url + "/auth/login", json={"api_key": secret}, timeout=30)
    r = server.request("DELETE", "/admin/purge", params={"api_key_id": doc["_id"], "delete_key": "false"},
                       headers=server.auth())
    assert r.status_code == 200, r.text
    assert r.json()["data"]["deleted"] == {"sessions": 1, "custom_tasks": 0, "execution_logs": 0, "api_keys": 0}
    assert server.get("/auth/check", headers=server.auth(secret)).status_code == 200


def test_sessions_listing(server):
    secret, doc = server.create_key("lister")
    s = requests.Session()
    s.post(server.url + "/auth/login", json={"api_key": secret}, headers={"User-Agent": "pytest-agent"}, timeout=30)
    data = server.get("/sessions", params={"active": "true"}, headers=server.auth()).json()["data"]
    mine = [x for x in data["sessions"] if x["api_key_id"] == doc["_id"]]
    assert len(mine) == 1
    sess = mine[0]
    assert sess["is_active"] is True
    assert sess["user_agent"] == "pytest-agent"
    assert sess["ip_address"] == "127.0.0.0"
    assert sess["activity_log"][0]["action"] == "login"
    assert sess["activity_log"][0]["endpoint"] == "/auth/login"
    assert sess["expires_at"] > sess["created_at"]
    assert_error(server.get("/sessions", params={"active": "maybe"}, headers=server.auth()), 400)


def test_metrics_text_format(server):
    server.get("/health")
    r = server.get("/metrics", headers=server.auth())
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    t = r.text
    assert re.search(r'bertstudio_http_requests_total\{method="GET",route="/health",status="200"\} \d+', t)
    assert 'bertstudio_http_request_duration_seconds_bucket{method="GET",route="/health",le="+Inf"}' in t
    for name in ("bertstudio_log_queue_depth", "bertstudio_log_queue_dropped_total", "bertstudio_store_errors_total",
                 'bertstudio_rate_limited_total{scope="ip"}', "bertstudio_uptime_seconds"):
        assert name in t
    assert server.admin_key not in t
    assert_error(server.get("/metrics"), 401)


def test_sweep_runs_on_demand(server):
    r = server.post("/admin/sweep", headers=server.auth())
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["execution_logs_removed"] >= 0 and d["sessions_removed"] >= 0


def test_two_processes_share_keys_and_see_revocations():
    a = start_server()
    b = start_server(data_dir=a.data_dir, relaxed=False)
    try:
        assert b.admin_key is None  # the store already had the admin key
        b.admin_key = a.admin_key
        secret, doc = a.create_key("shared")
        assert b.get("/auth/check", headers=b.auth(secret)).status_code == 200
        assert a.request("DELETE", f"/api-keys/{doc['_id']}", headers=a.auth()).status_code == 200
        assert_error(a.get("/auth/check", headers=a.auth(secret)), 401)  # at once where revoked
        # Elsewhere within the 2-second authentication cache (docs/api.md).
        deadline = time.monotonic() + 10
        while b.get("/auth/check", headers=b.auth(secret)).status_code == 200:
            assert time.monotonic() < deadline, "revocation not seen by the other process"
            time.sleep(0.1)  # polling for the documented propagation, not hiding a race
        # Settings written by one process are read by the other.
        assert a.request("PUT", "/settings/log_retention_days", json={"value": 11}, headers=a.auth()).status_code == 200
        assert b.get("/settings/log_retention_days", headers=b.auth()).json()["data"]["setting_value"] == 11
    finally:
        b.stop()
        a.stop()
