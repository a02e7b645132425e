"""Hostile and malformed input: every case answers 400 (or 404 / 413) with
the envelope and a detail naming the problem; none reaches the store as an
error, none crashes the server."""
import socket

import pytest

from test_health import assert_error


def post_raw(server, path, body, headers=None):
    h = {"Content-Type": "application/json", **server.auth(), **(headers or {})}
    return server.post(path, data=body, headers=h)


@pytest.mark.parametrize("body,needle", [
    (b"", "empty"),
    (b"{", "line 1"),
    (b"{\"name\": }", "line 1"),
    (b"{\"name\": \"a\", \"name\": \"b\"}", "duplicate"),
    (b"[1, 2]", "must be a JSON object"),
    (b"\"just a string\"", "must be a JSON object"),
    (b"{\"name\": \"a\xff\xfe\"}", "UTF-8"),
    (b"{\"name\": \"\xed\xa0\x80\"}", "UTF-8"),  # a UTF-16 surrogate encoded in UTF-8
    (b"{\"name\": \"a\\u0000b\"}", "NUL"),
    (b"{\"name\": \"x\", \"rate_limits\": {\"requests_per_minute\": 99999999999999999999999}}", "integer"),
    (b"{\"name\": \"x\", \"rate_limits\": {\"requests_per_minute\": 1e999}}", "real"),
    (b"[" * 100 + b"]" * 100, "nest"),
    (b"{\"a\":" * 50 + b"1" + b"}" * 50, "nest"),
])
def test_malformed_bodies_are_400(server, body, needle):
    r = post_raw(server, "/api-keys", body)
    out = assert_error(r, 400)
    assert needle.lower() in (out["error"] + " " + out["detail"]).lower(), out


@pytest.mark.parametrize("body,needle", [
    ({}, "field 'name' is required"),
    ({"name": 5}, "field 'name' must be a string, got an integer"),
    ({"name": ""}, "field 'name'"),
    ({"name": "x" * 101}, "101 characters"),
    ({"name": "ok", "permissions": "admin:write"}, "field 'permissions' must be an array of strings"),
    ({"name": "ok", "permissions": ["root"]}, "'root' is not one of"),
    ({"name": "ok", "permissions": [1]}, "item 0 is an integer"),
    ({"name": "ok", "is_active": "yes"}, "field 'is_active' must be a boolean"),
    ({"name": "ok", "role": "admin"}, "unknown field 'role'"),
    ({"name": "ok", "rate_limits": {"requests_per_minute": -1}}, "requests_per_minute"),
    ({"name": "ok", "rate_limits": {"bogus": 1}}, "bogus"),
])
def test_wrong_fields_are_400_naming_them(server, body, needle):
    out = assert_error(server.post("/api-keys", json=body, headers=server.auth()), 400)
    assert needle in out["detail"], out


@pytest.mark.parametrize("path", [
    "/api-keys/..%2f..%2fetc%2fpasswd",
    "/api-keys/../../etc/passwd",
    "/api-keys/' OR '1'='1",
    "/api-keys/{\"$ne\": null}",
    "/api-keys/0000000000000000000000000000",
    "/api-keys/ZZZZZZZZZZZZZZZZZZZZZZZZ",
    "/api-keys/" + "a" * 300,
    "/settings/..%2F..%2Fsettings",
    "/settings/'; DROP TABLE api_keys; --",
])
def test_hostile_ids_are_400_or_404(server, path):
    # Dot segments sent as they are (requests would resolve them first).
    r = (server.raw_get if "/../" in path else server.get)(path, headers=server.auth())
    assert r.status_code in (400, 404), r.text
    assert r.json()["success"] is False
    assert "store" not in r.json()["error"].lower()


def test_unknown_but_wellformed_id_is_404(server):
    assert_error(server.get("/api-keys/000000000000000000000000", headers=server.auth()), 404)
    assert_error(server.request("PATCH", "/api-keys/000000000000000000000000", json={"name": "x"},
                                headers=server.auth()), 404)


@pytest.mark.parametrize("query", [
    {"task_type": "'; DROP TABLE execution_logs; --"},
    {"model_name": "../../../etc/passwd"},
    {"model_name": "{\"$gt\": \"\"}"},
    {"since": "yesterday"},
    {"until": "2024-13-45"},
    {"limit": "-1"},
    {"limit": "99999999999999999999"},
    {"offset": "abc"},
    {"group_by": "password"},
    {"status": "maybe"},
])
def test_hostile_query_parameters_are_400(server, query):
    path = "/logs/stats" if "group_by" in query else "/logs"
    out = assert_error(server.get(path, params=query, headers=server.auth()), 400)
    assert list(query)[0] in out["detail"]


def test_body_of_11_mb_is_413(server):
    r = post_raw(server, "/api-keys", b"{\"name\": \"" + b"x" * (11 << 20) + b"\"}")
    out = assert_error(r, 413)
    assert "10485760" in out["detail"]


def test_server_survives_garbage(server):
    for raw in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /api-keys HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: -5\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)  # end of input: the server answers or closes
            try:
                s.recv(4096)
            except (ConnectionResetError, TimeoutError):
                pass
    assert server.get("/health").status_code == 200
