"""TLS (--tls-cert/--tls-key, Secure session cookie) and CORS (the
cors_allowed_origins setting: preflight and response headers)."""
import shutil
import subprocess

import pytest
import requests

from conftest import start_server
from test_health import assert_error

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    srv = start_server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https")
    yield srv
    srv.stop()


def test_https_serves_and_cookie_is_secure(tls_server):
    r = tls_server.get("/health")
    assert r.status_code == 200
    r = tls_server.post("/auth/login", json={"api_key": tls_server.admin_key})
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # Plain HTTP to the TLS port gets no API answer.
    with pytest.raises(requests.RequestException):
        r = requests.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5)
        assert r.status_code != 200
        raise requests.RequestException("answered with an error")


def test_tls_needs_both_files(tmp_path):
    from conftest import BIN
    out = subprocess.run([BIN, "serve", "--port", "0", "--data-dir", str(tmp_path), "--tls-cert", "/nonexistent.pem"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--tls-key" in out.stderr


def test_cors_allow_list(server):
    origin = "https://studio.example:8443"
    r = server.request("PUT", "/settings/cors_allowed_origins", json={"value": [origin]}, headers=server.auth())
    assert r.status_code == 200, r.text
    try:
        pre = server.request("OPTIONS", "/api-keys", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        assert pre.headers["Access-Control-Allow-Credentials"] == "true"
        r = server.get("/auth/check", headers={"Origin": origin, **server.auth()})
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in r.headers["Vary"]
        # Another origin gets no CORS grant (the browser then blocks it).
        evil = "https://evil.example"
        pre = server.request("OPTIONS", "/api-keys", headers={"Origin": evil, "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in pre.headers
        r = server.get("/auth/check", headers={"Origin": evil, **server.auth()})
        assert "Access-Control-Allow-Origin" not in r.headers
        # An allowed origin also passes the session CSRF check.
        s = requests.Session()
        s.post(server.url + "/auth/login", json={"api_key": server.admin_key}, timeout=30)
        r = s.post(server.url + "/api-keys", json={"name": "cors-made"}, headers={"Origin": origin}, timeout=30)
        assert r.status_code == 201, r.text
        assert_error(s.post(server.url + "/api-keys", json={"name": "x"}, headers={"Origin": evil}, timeout=30), 403)
    finally:
        server.request("PUT", "/settings/cors_allowed_origins", json={"value": []}, headers=server.auth())
    assert_error(server.request("OPTIONS", "/no/such/path"), 404)
