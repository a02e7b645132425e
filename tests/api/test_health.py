"""The skeleton of the HTTP contract: health, the error envelope for unknown
routes, wrong methods, oversized and malformed bodies, graceful shutdown."""
import signal
import socket
import threading
import time


from conftest import start_server


def assert_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert body["status_code"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_health(server):
    r = server.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["success"] is True
    assert body["data"]["status"] == "ok"
    assert body["data"]["version"]


def test_health_db(server):
    r = server.get("/health/db")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "ok"
    assert data["engine"] == "sqlite"
    assert data["latency_ms"] >= 0


def test_unknown_route_is_404(server):
    body = assert_error(server.get("/no/such/route"), 404)
    assert "/no/such/route" in body["detail"]


def test_wrong_method_is_405(server):
    r = server.request("DELETE", "/health")
    body = assert_error(r, 405)
    assert "GET" in r.headers["Allow"]
    assert "GET" in body["detail"]


def test_body_over_limit_is_413_before_reading_it_all(server):
    # Announce 11 MB but send only the headers: the server must answer 413
    # from Content-Length alone, without waiting for the body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 11534336\r\n\r\n")
        reply = s.recv(65536).decode("utf-8", "replace")
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"status_code":413' in reply


def test_streamed_body_over_limit_is_413(server):
    def chunks():
        block = b"x" * (1 << 20)
        for _ in range(11):
            yield block
    r = server.post("/health", data=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413)


def test_access_log_line(server):
    server.get("/health?api_key=ak_secretvalue")
    log = server.log_with("method=GET path=/health status=200")
    assert "ak_secretvalue" not in log


def test_graceful_shutdown_finishes_in_flight_request():
    srv = start_server()
    # A request whose body is still arriving when SIGTERM comes must still be
    # answered: the server stops accepting but drains in-flight exchanges.
    # "Expect: 100-continue" makes the server say when it has taken the
    # request in, so the signal surely comes while the exchange is in flight.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
              b"Expect: 100-continue\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 100"), "no 100 Continue"
    s.sendall(b"12345")
    t = threading.Thread(target=srv.stop, args=(signal.SIGTERM,))
    t.start()
    # Wait until the server has stopped accepting (it has handled SIGTERM)
    # while our exchange is still open.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        except OSError:
            break
    else:
        raise AssertionError("server still accepting 20 s after SIGTERM")
    assert srv.proc.poll() is None, "server exited while a request was in flight"
    s.sendall(b"67890")
    reply = s.recv(65536).decode()
    s.close()
    t.join(30)
    assert reply.startswith("HTTP/1.1 405"), reply  # POST /health: answered, not dropped
    assert srv.proc.returncode == 0

def test_access_log_cannot_be_forged_or_leak_secrets(server):
    server.get("/x%0A2026-01-01T00:00:00.000Z info access: forged%22")
    secret = "ak_" + "Q" * 43
    server.get("/" + secret + "/y")
    server.get("/auth/check", cookies={"bs_session": "sess_" + "Z" * 32})
    log = server.log_with("path=/x\\x0a2026-01-01", "path=/ak_[redacted]/y", "path=/auth/check status=401")
    assert "\ninfo access: forged" not in log and not any(l.startswith("2026-01-01") for l in log.splitlines())
    assert secret not in log
    assert "Z" * 32 not in log


def test_head_is_get_without_body(server):
    r = server.request("HEAD", "/health")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Type"].startswith("application/json")
