"""Authentication and authorization: the four ways to present credentials,
every way they can be wrong (401), the permission table (403), sessions
(cookie attributes, sliding expiry, logout, CSRF) and that no secret leaks
into responses or logs after its creation."""
import time

import pytest
import requests

from conftest import start_server
from test_health import assert_error

ALL_PERMS = ["tasks:execute", "tasks:save", "models:download", "admin:read", "admin:write"]


def test_first_start_prints_an_admin_key(server):
    assert server.admin_key and server.admin_key.startswith("ak_")
    assert len(server.admin_key) == 3 + 43
    r = server.get("/auth/check", headers=server.auth())
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["authenticated"] is True
    assert data["auth_method"] == "api_key"
    assert sorted(data["permissions"]) == sorted(ALL_PERMS)


def test_second_start_creates_no_new_key(server):
    srv = start_server()
    first = srv.admin_key
    srv.stop()
    again = start_server(data_dir=srv.data_dir, relaxed=False)
    try:
        assert again.admin_key is None  # nothing printed: the store has a key
        assert again.get("/auth/check", headers=again.auth(first)).status_code == 200
    finally:
        again.stop()


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "query"])
def test_key_accepted_three_ways(server, how):
    key = server.admin_key
    kw = {"bearer": {"headers": {"Authorization": f"Bearer {key}"}},
          "x-api-key": {"headers": {"X-API-Key": key}},
          "query": {"params": {"api_key": key}}}[how]
    r = server.get("/auth/check", **kw)
    assert r.status_code == 200, r.text


def test_query_key_is_redacted_from_logs(server):
    secret, _ = server.create_key("query-user")
    assert server.get("/auth/check", params={"api_key": secret}).status_code == 200
    assert secret not in server.log()


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "Bearer ak_doesnotexist"},
    {"X-API-Key": "not-a-key"},
    {"X-API-Key": "ak_' OR '1'='1"},
    {"X-API-Key": "ak_" + "A" * 500},
    {"Cookie": "bs_session=sess_nonexistent"},
    {"Cookie": "bs_session=../../etc/passwd"},
])
def test_bad_credentials_are_401(server, headers):
    r = server.get("/auth/check", headers=headers)
    body = assert_error(r, 401)
    assert "Bearer" in r.headers.get("WWW-Authenticate", "")
    for v in headers.values():
        if len(v) > 12:
            assert v not in body["detail"]  # credentials are never echoed


def test_key_differing_by_one_char_is_401(server):
    secret, _ = server.create_key("one-off")
    for i in (3, len(secret) // 2, len(secret) - 1):
        c = secret[i]
        other = secret[:i] + ("b" if c == "a" else "a") + secret[i + 1:]
        assert_error(server.get("/auth/check", headers=server.auth(other)), 401)
    assert_error(server.get("/auth/check", headers=server.auth(secret[:-1])), 401)
    assert_error(server.get("/auth/check", headers=server.auth(secret + "x")), 401)
    assert server.get("/auth/check", headers=server.auth(secret)).status_code == 200


def test_revoked_and_deactivated_keys_are_401(server):
    secret, doc = server.create_key("to-revoke")
    assert server.get("/auth/check", headers=server.auth(secret)).status_code == 200
    r = server.request("PATCH", f"/api-keys/{doc['_id']}", json={"is_active": False}, headers=server.auth())
    assert r.status_code == 200, r.text
    body = assert_error(server.get("/auth/check", headers=server.auth(secret)), 401)
    assert "revoked" in body["error"].lower()
    server.request("PATCH", f"/api-keys/{doc['_id']}", json={"is_active": True}, headers=server.auth())
    assert server.get("/auth/check", headers=server.auth(secret)).status_code == 200
    r = server.request("DELETE", f"/api-keys/{doc['_id']}", headers=server.auth())
    assert r.status_code == 200, r.text
    assert r.json()["data"]["is_active"] is False
    assert_error(server.get("/auth/check", headers=server.auth(secret)), 401)


# route -> the permission it needs (the permission table of docs/api.md)
PERMISSION_TABLE = [
    ("GET", "/api-keys", "admin:read"),
    ("POST", "/api-keys", "admin:write"),
    ("GET", "/sessions", "admin:read"),
    ("GET", "/settings", "admin:read"),
    ("GET", "/settings/session_ttl_hours", "admin:read"),
    ("PUT", "/settings/session_ttl_hours", "admin:write"),
    ("GET", "/logs", "admin:read"),
    ("GET", "/logs/stats", "admin:read"),
    ("GET", "/metrics", "admin:read"),
    ("DELETE", "/admin/purge?api_key_id=000000000000000000000000", "admin:write"),
    ("POST", "/admin/sweep", "admin:write"),
]


# Routes of the other resources (tasks, models, custom tasks), checked when
# the running binary has them.
PERMISSION_TABLE += [
    ("POST", "/tokenize", "tasks:execute"),
    ("POST", "/tasks/classification", "tasks:execute"),
    ("POST", "/v1/embeddings", "tasks:execute"),
    ("POST", "/models/download", "models:download"),
    ("POST", "/custom-tasks", "tasks:save"),
]


@pytest.mark.parametrize("method,path,perm", PERMISSION_TABLE)
def test_each_route_needs_its_permission(server, method, path, perm):
    if server.request("OPTIONS", path.split("?")[0]).status_code == 404:
        pytest.skip(f"{path} is not served by this build")
    others = [p for p in ALL_PERMS if p != perm]
    without, _ = server.create_key("without-" + perm, permissions=others)
    with_only, _ = server.create_key("only-" + perm, permissions=[perm])
    r = server.request(method, path, headers=server.auth(without))
    if path.startswith("/v1/"):  # OpenAI's error shape (test_tasks_compat.py)
        assert r.status_code == 403, r.text
        assert perm in r.json()["error"]["message"]
    else:
        body = assert_error(r, 403)
        assert perm in body["detail"]
    r = server.request(method, path, headers=server.auth(with_only))
    assert r.status_code not in (401, 403), r.text


def test_no_auth_needed_for_health_and_login(server):
    assert server.get("/health").status_code == 200
    assert server.get("/health/db").status_code == 200
    assert_error(server.post("/auth/login", json={"api_key": "ak_wrong"}), 401)


def login(server, key):
    s = requests.Session()
    s.verify = False
    r = s.post(server.url + "/auth/login", json={"api_key": key}, timeout=30)
    return s, r


def test_login_sets_a_safe_cookie_and_check_works(server):
    secret, doc = server.create_key("browser", permissions=["tasks:execute", "admin:read"])
    s, r = login(server, secret)
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("bs_session=sess_")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see test_tls_cors.py
    session_secret = cookie.split(";")[0].split("=", 1)[1]
    assert session_secret not in r.text  # the body never carries the secret
    assert r.json()["data"]["api_key_id"] == doc["_id"]
    assert r.json()["data"]["expires_at"]
    r = s.get(server.url + "/auth/check")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["auth_method"] == "session"
    assert r.json()["data"]["permissions"] == ["tasks:execute", "admin:read"]
    # The session's stored form is a hash, never the secret.
    sessions = server.get("/sessions", headers=server.auth()).text
    assert session_secret not in sessions
    assert session_secret not in server.log()


def test_login_with_bad_or_revoked_key_is_401(server):
    assert_error(server.post("/auth/login", json={"api_key": "ak_" + "x" * 43}), 401)
    assert_error(server.post("/auth/login", json={}), 400)
    secret, doc = server.create_key("revoked-login")
    server.request("DELETE", f"/api-keys/{doc['_id']}", headers=server.auth())
    assert_error(server.post("/auth/login", json={"api_key": secret}), 401)


def test_logout_ends_the_session(server):
    secret, _ = server.create_key("logout")
    s, r = login(server, secret)
    cookie = s.cookies.get("bs_session")
    r = s.post(server.url + "/auth/logout", headers={"X-Requested-With": "fetch"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["logged_out"] is True
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    # The old cookie no longer works, even when replayed.
    r = requests.get(server.url + "/auth/check", cookies={"bs_session": cookie}, timeout=30)
    body = assert_error(r, 401)
    assert "ended" in body["error"].lower()


def test_session_of_a_revoked_key_is_401(server):
    secret, doc = server.create_key("revoke-under-session")
    s, _ = login(server, secret)
    assert s.get(server.url + "/auth/check").status_code == 200
    server.request("DELETE", f"/api-keys/{doc['_id']}", headers=server.auth())
    assert_error(s.get(server.url + "/auth/check"), 401)


def test_session_id_differing_by_one_char_is_401(server):
    secret, _ = server.create_key("sess-one-off")
    s, _ = login(server, secret)
    cookie = s.cookies.get("bs_session")
    i = len(cookie) - 3
    other = cookie[:i] + ("b" if cookie[i] == "a" else "a") + cookie[i + 1:]
    assert_error(requests.get(server.url + "/auth/check", cookies={"bs_session": other}, timeout=30), 401)
    assert requests.get(server.url + "/auth/check", cookies={"bs_session": cookie}, timeout=30).status_code == 200


def test_csrf_cookie_writes_need_origin_or_header(server):
    secret, _ = server.create_key("csrf", permissions=ALL_PERMS)
    s, _ = login(server, secret)
    body = {"name": "made-by-session"}
    # A plain cross-site form post: cookie but no Origin / X-Requested-With.
    r = s.post(server.url + "/api-keys", json=body)
    assert_error(r, 403)
    r = s.post(server.url + "/api-keys", json=body, headers={"Origin": "https://evil.example"})
    assert_error(r, 403)
    r = s.post(server.url + "/api-keys", json=body, headers={"Origin": server.url})
    assert r.status_code == 201, r.text
    r = s.post(server.url + "/api-keys", json=body, headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 201, r.text
    # Reads need no proof, and key-authenticated writes are not affected.
    assert s.get(server.url + "/api-keys").status_code == 200
    assert server.post("/api-keys", json=body, headers=server.auth()).status_code == 201


def test_session_expires_after_ttl():
    srv = start_server()
    try:
        # 4 seconds; session_ttl_hours accepts fractions (minimum 1 second).
        r = srv.request("PUT", "/settings/session_ttl_hours", json={"value": 4 / 3600}, headers=srv.auth())
        assert r.status_code == 200, r.text
        s, r = login(srv, srv.admin_key)
        assert r.status_code == 200
        assert s.get(srv.url + "/auth/check").status_code == 200
        time.sleep(4.5)  # the thing under test is the passage of time itself
        body = assert_error(s.get(srv.url + "/auth/check"), 401)
        assert "expired" in body["error"].lower()
    finally:
        srv.stop()


def test_session_expiry_slides_with_activity():
    srv = start_server()
    try:
        # 10 s: the session is touched once a tenth of it (1 s) has passed.
        srv.request("PUT", "/settings/session_ttl_hours", json={"value": 10 / 3600}, headers=srv.auth())
        s, _ = login(srv, srv.admin_key)
        first = s.get(srv.url + "/auth/check").json()["data"]["expires_at"]
        time.sleep(1.5)
        assert s.get(srv.url + "/auth/check").status_code == 200  # touches the session
        later = s.get(srv.url + "/auth/check").json()["data"]["expires_at"]
        assert later > first
    finally:
        srv.stop()


def test_activity_log_is_capped_at_100(server):
    secret, doc = server.create_key("busy", permissions=ALL_PERMS,
                                    rate_limits={"requests_per_minute": 10000, "requests_per_hour": 100000})
    s, _ = login(server, secret)
    hdr = {"X-Requested-With": "fetch"}
    for i in range(105):
        r = s.request("PATCH", server.url + f"/api-keys/{doc['_id']}", json={"description": f"edit {i}"}, headers=hdr)
        assert r.status_code == 200, r.text
    sessions = server.get("/sessions", params={"limit": 1000}, headers=server.auth()).json()["data"]["sessions"]
    mine = [x for x in sessions if x["api_key_id"] == doc["_id"]]
    assert len(mine) == 1
    log = mine[0]["activity_log"]
    assert len(log) == 100
    assert all(e["action"] == "patch" and e["endpoint"] == "/api-keys/{id}" for e in log)
    assert all(e["timestamp"] for e in log)
    # The login entry and the first 5 edits were pushed out, oldest first.
    assert log[0]["timestamp"] <= log[-1]["timestamp"]


def test_secrets_never_appear_after_creation(server):
    secret, doc = server.create_key("leak-check")
    # Not in get, list, or the usage fields.
    for path in (f"/api-keys/{doc['_id']}", "/api-keys", "/sessions", "/logs"):
        r = server.get(path, headers=server.auth())
        assert r.status_code == 200
        assert secret not in r.text
        assert secret[3:] not in r.text
        assert "api_key\"" not in r.text.replace("\"api_key_id\"", "")
    assert doc["key_prefix"] == secret[:8]
    server.get("/auth/check", headers=server.auth(secret))
    assert secret not in server.log()
