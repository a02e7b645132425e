"""System settings: the registry (types, defaults, ranges, descriptions),
validation of PUT, updated_by, changes applied without restart, and
persistence of keys, sessions and settings across a restart."""
import requests

from conftest import start_server
from test_health import assert_error

DEFAULTS = {
    "max_custom_tasks_per_user": 50,
    "session_ttl_hours": 8,
    "log_retention_days": 90,
    "session_retention_days": 30,
    "log_input_text": False,
    "max_request_bytes": 10485760,
    "per_ip_requests_per_minute": 100,
    "max_loaded_models": 8,
}


def test_registry_lists_defaults_types_and_descriptions():
    srv = start_server(relaxed=False)
    try:
        r = srv.get("/settings", headers=srv.auth())
        assert r.status_code == 200, r.text
        settings = {s["setting_key"]: s for s in r.json()["data"]["settings"]}
        for key, value in DEFAULTS.items():
            assert settings[key]["setting_value"] == value, key
            assert settings[key]["default"] == value
            assert settings[key]["is_default"] is True
            assert settings[key]["description"]
        assert settings["session_ttl_hours"]["setting_type"] == "float"
        assert settings["log_input_text"]["setting_type"] == "boolean"
        assert settings["max_request_bytes"]["setting_type"] == "integer"
        assert settings["cors_allowed_origins"]["setting_type"] == "json"
        assert settings["max_request_bytes"]["min"] == 1024
        assert {"model_cache_max_bytes", "max_batch_tokens"} <= set(settings)
    finally:
        srv.stop()


def test_put_validates_against_the_registry(server):
    h = server.auth()
    cases = [
        ("max_request_bytes", "big", "integer"),
        ("max_request_bytes", 1.5, "integer"),
        ("max_request_bytes", 10, "range"),
        ("log_input_text", 1, "boolean"),
        ("session_ttl_hours", 0, "range"),
        ("session_ttl_hours", 1e9, "range"),
        ("cors_allowed_origins", "https://a.example", "array"),
        ("cors_allowed_origins", ["https://a.example/path"], "origin"),
        ("default_rate_limits", {"requests_per_minute": 0}, "positive"),
    ]
    for key, value, needle in cases:
        out = assert_error(server.request("PUT", f"/settings/{key}", json={"value": value}, headers=h), 400)
        assert needle in out["detail"], (key, value, out)
    assert_error(server.request("PUT", "/settings/max_request_bytes", json={"val": 5}, headers=h), 400)
    assert_error(server.request("PUT", "/settings/max_request_bytes", json={}, headers=h), 400)
    out = assert_error(server.request("PUT", "/settings/no_such_thing", json={"value": 1}, headers=h), 404)
    assert "no_such_thing" in out["detail"]
    assert_error(server.get("/settings/no_such_thing", headers=h), 404)


def test_put_records_who_and_applies_at_once():
    srv = start_server()
    try:
        secret, _ = srv.create_key("settings-admin", permissions=["admin:read", "admin:write"])
        r = srv.request("PUT", "/settings/max_request_bytes", json={"value": 2048}, headers=srv.auth(secret))
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["setting_value"] == 2048
        assert data["updated_by"] == "settings-admin"
        assert data["is_default"] is False
        assert srv.get("/settings/max_request_bytes", headers=srv.auth()).json()["data"]["setting_value"] == 2048
        # The body limit reads the new value on the next request.
        out = assert_error(srv.post("/api-keys", json={"name": "x" * 3000}, headers=srv.auth()), 413)
        assert "2048" in out["detail"]
        assert srv.post("/api-keys", json={"name": "small"}, headers=srv.auth()).status_code == 201
    finally:
        srv.stop()


def test_restart_keeps_keys_sessions_and_settings():
    srv = start_server()
    secret, doc = srv.create_key("survivor", permissions=["admin:read"])
    s = requests.Session()
    assert s.post(srv.url + "/auth/login", json={"api_key": secret}, timeout=30).status_code == 200
    r = srv.request("PUT", "/settings/log_retention_days", json={"value": 7}, headers=srv.auth())
    assert r.status_code == 200
    assert s.get(srv.url + "/auth/check").status_code == 200  # usage to be flushed at shutdown
    assert srv.stop() == 0
    again = start_server(data_dir=srv.data_dir)
    try:
        again.admin_key = srv.admin_key
        assert again.get("/auth/check", headers=again.auth(secret)).status_code == 200
        # Cookies are not port-bound: the same session cookie reaches the new process.
        assert s.get(again.url + "/auth/check").status_code == 200
        assert again.get("/settings/log_retention_days", headers=again.auth()).json()["data"]["setting_value"] == 7
        key = again.get(f"/api-keys/{doc['_id']}", headers=again.auth()).json()["data"]
        assert key["usage_stats"]["total_requests"] >= 3
        assert key["last_used"]
    finally:
        again.stop()
