"""Starts the real bertstudio binary on 127.0.0.1 with a fresh data directory
for the test session, waits for /health, and stops it afterwards.

Tests use the `server` fixture (base URL and helpers) and may start extra
servers of their own with `start_server()` (e.g. to test restarts)."""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings

import pytest
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
warnings.filterwarnings("ignore", message="Unverified HTTPS request")

BIN = os.environ.get("BERTSTUDIO_BIN", os.path.join(os.path.dirname(__file__), "../../build/bertstudio"))
FIXTURES = os.environ.get("BS_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))
# libmongoc (linked, whether or not MongoDB is used) opens /dev/shm/mongoc-PID
# for its counters when the library loads; a process killed with -9 leaves
# its file, and a later process given the same PID then prints "Falling back
# to malloc for counters" on stderr, which the CLI tests read. Every child
# of the tests runs without them (docs/store.md).
os.environ.setdefault("MONGOC_DISABLE_SHM", "1")


# Every server and temporary folder of the session lives under one root that
# is removed at the end; servers a test left running are stopped then too.
_started = []


def pytest_sessionstart(session):
    root = tempfile.mkdtemp(prefix="bs-api-session-")
    tempfile.tempdir = root
    # atexit runs last-registered first: registered now, this runs after
    # pytest's own clean-up of its tmp_path folders (which live under root).
    atexit.register(shutil.rmtree, root, True)


def pytest_sessionfinish(session, exitstatus):
    for srv in _started:
        srv.stop(signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, port, proc, log_path):
        self.data_dir = data_dir
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.admin_key = None

    def auth(self, key=None):
        """Headers authenticating with key (default: the first admin key)."""
        return {"Authorization": "Bearer " + (key or self.admin_key)}

    def create_key(self, name="test", permissions=("tasks:execute",), **fields):
        """Creates an API key with the admin key; returns (secret, document)."""
        r = self.post("/api-keys", json={"name": name, "permissions": list(permissions), **fields},
                      headers=self.auth())
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        return data["api_key"], data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        kw.setdefault("verify", False)  # the TLS tests use a self-signed certificate
        return requests.request(method, self.url + path, **kw)

    def raw_get(self, path, headers=None):
        """GET with the path sent byte for byte: requests (urllib3) removes
        dot segments, so "/a/../b" would reach the server as "/b"."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            out = requests.models.Response()
            out.status_code, out._content = r.status, body
            out.headers.update(r.getheaders())
            out.encoding = "utf-8"
            return out
        finally:
            conn.close()

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_with(self, *needles, timeout=10):
        """The log once it holds every needle. A request's access line is
        written when its connection completes, which may come just after
        the client has read the answer (and after a later request's line):
        reading the log at once could miss the line a test asserts on."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if all(n in log for n in needles):
                return log
            if time.monotonic() > deadline:
                missing = [n for n in needles if n not in log]
                raise AssertionError(f"log lacks {missing} after {timeout} s:\n{log[-2000:]}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(data_dir=None, extra_args=(), env=None, relaxed=True, scheme="http"):
    """Starts a server. relaxed=True lifts the per-IP rate limit (default 100
    requests/minute, and every test talks from 127.0.0.1) through the API, so
    that suites are not throttled; limit tests pass relaxed=False."""
    data_dir = data_dir or tempfile.mkdtemp(prefix="bs-api-")
    port = free_port()
    log_path = os.path.join(data_dir, "server.log")
    out_path = os.path.join(data_dir, "server.out")
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [BIN, "serve", "--port", str(port), "--data-dir", data_dir, *extra_args],
        stdout=open(out_path, "w"), stderr=open(log_path, "w"), env=full_env)
    srv = Server(data_dir, port, proc, log_path)
    _started.append(srv)
    srv.url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{srv.log()}")
        try:
            if requests.get(srv.url + "/health", timeout=1, verify=False).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            srv.stop(signal.SIGKILL)
            raise RuntimeError("server did not answer /health within 30 s:\n" + srv.log())
        time.sleep(0.05)  # polling for readiness, not hiding a race
    with open(out_path, encoding="utf-8") as f:
        for line in f:
            if "ak_" in line:
                srv.admin_key = line[line.index("ak_"):].split()[0]
    if relaxed and srv.admin_key:
        r = requests.put(srv.url + "/settings/per_ip_requests_per_minute", json={"value": 100000000},
                         headers={"Authorization": "Bearer " + srv.admin_key}, timeout=30, verify=False)
        assert r.status_code == 200, r.text
    return srv


def start_demo_server(key_name):
    """A server with the fixture models as demo/<folder>, and srv.hdr the
    headers of a tasks:execute key of its own with room for a whole suite
    (the admin key keeps the default 100 requests/minute); srv.key_id is
    that key's id."""
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": os.path.join(FIXTURES, "models")})
    secret, doc = srv.create_key(name=key_name, permissions=("tasks:execute",),
                                 rate_limits={"requests_per_minute": 1000000,
                                              "requests_per_hour": 100000000})
    srv.hdr = srv.auth(secret)
    srv.key_id = doc["_id"]
    return srv


@pytest.fixture(scope="session")
def server():
    srv = start_server()
    yield srv
    srv.stop()
