"""Starts the real bertstudio binary on 127.0.0.1 with a fresh data directory
for the test session, waits for /health, and stops it afterwards.

Tests use the `server` fixture (base URL and helpers) and may start extra
servers of their own with `start_server()` (e.g. to test restarts)."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

BIN = os.environ.get("BERTSTUDIO_BIN", os.path.join(os.path.dirname(__file__), "../../build/bertstudio"))
FIXTURES = os.environ.get("BS_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))


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

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=60, **kw)

    def request(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=60, **kw)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(data_dir=None, extra_args=(), env=None):
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
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{srv.log()}")
        try:
            if requests.get(srv.url + "/health", timeout=1).status_code == 200:
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
    return srv


@pytest.fixture(scope="session")
def server():
    srv = start_server()
    yield srv
    srv.stop()
