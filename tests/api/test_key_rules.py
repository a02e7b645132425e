"""Who may change which key (issue 17 M5, L11): a key grants only the
permissions it holds itself (admin:write no longer implies the rest), and
nobody takes admin:write from the last active key holding it, whether by
PATCH, revoke or purge."""
import pytest

from conftest import start_server
from test_health import assert_error


@pytest.fixture
def srv():
    s = start_server()
    yield s
    s.stop()


def key_id(srv, secret):
    r = srv.get("/auth/check", headers=srv.auth(secret))
    assert r.status_code == 200, r.text
    return r.json()["data"]["api_key_id"]


def test_admin_write_alone_grants_only_admin_write(srv):
    writer, doc = srv.create_key("writer", permissions=("admin:write",))
    h = srv.auth(writer)
    # The finding: this key created a key with all five permissions.
    for perms in (["admin:read"], ["tasks:execute", "admin:write"],
                  ["tasks:execute", "tasks:save", "models:download", "admin:read", "admin:write"]):
        r = srv.post("/api-keys", headers=h, json={"name": "x", "permissions": perms})
        out = assert_error(r, 403)
        assert "cannot grant" in out["detail"]
    # The default permission (tasks:execute) is not its own either.
    assert_error(srv.post("/api-keys", headers=h, json={"name": "x"}), 403)
    r = srv.post("/api-keys", headers=h, json={"name": "peer", "permissions": ["admin:write"]})
    assert r.status_code == 201, r.text
    peer = r.json()["data"]["_id"]
    # Nor PATCH itself (or another key) up.
    r = srv.request("PATCH", f"/api-keys/{doc['_id']}", headers=h,
                    json={"permissions": ["admin:write", "admin:read"]})
    assert_error(r, 403)
    r = srv.request("PATCH", f"/api-keys/{peer}", headers=h, json={"permissions": ["admin:write", "tasks:execute"]})
    assert_error(r, 403)
    me = srv.get(f"/api-keys/{doc['_id']}", headers=srv.auth()).json()["data"]
    assert me["permissions"] == ["admin:write"]
    # Removing a permission it lacks is fine; reactivating a key whose
    # permissions it lacks is a grant.
    _, other = srv.create_key("other", permissions=("tasks:execute",))
    r = srv.request("PATCH", f"/api-keys/{other['_id']}", headers=h, json={"permissions": []})
    assert r.status_code == 200, r.text
    _, other2 = srv.create_key("other2", permissions=("tasks:execute",))
    assert srv.request("DELETE", f"/api-keys/{other2['_id']}", headers=h).status_code == 200
    assert_error(srv.request("PATCH", f"/api-keys/{other2['_id']}", headers=h, json={"is_active": True}), 403)
    r = srv.request("PATCH", f"/api-keys/{other2['_id']}", headers=srv.auth(), json={"is_active": True})
    assert r.status_code == 200, r.text


def test_last_admin_write_key_keeps_it(srv):
    admin = key_id(srv, srv.admin_key)
    h = srv.auth()
    out = assert_error(srv.request("PATCH", f"/api-keys/{admin}", headers=h,
                                   json={"permissions": ["admin:read", "tasks:execute"]}), 409)
    assert "last active key with admin:write" in out["detail"]
    assert_error(srv.request("PATCH", f"/api-keys/{admin}", headers=h, json={"is_active": False}), 409)
    assert_error(srv.request("DELETE", f"/api-keys/{admin}", headers=h), 409)
    assert_error(srv.request("DELETE", f"/admin/purge?api_key_id={admin}", headers=h), 409)
    # Erasing the key's data but keeping the key is fine.
    r = srv.request("DELETE", f"/admin/purge?api_key_id={admin}&delete_key=false", headers=h)
    assert r.status_code == 200, r.text
    assert srv.get("/auth/check", headers=h).status_code == 200
    # With a second admin:write key, the first may go; then the second is
    # the last one.
    second, _ = srv.create_key("second admin", permissions=("admin:write", "admin:read"))
    r = srv.request("DELETE", f"/api-keys/{admin}", headers=srv.auth(second))
    assert r.status_code == 200, r.text
    assert srv.get("/auth/check", headers=h).status_code == 401
    second_id = key_id(srv, second)
    assert_error(srv.request("DELETE", f"/api-keys/{second_id}", headers=srv.auth(second)), 409)
    assert srv.get("/auth/check", headers=srv.auth(second)).status_code == 200
