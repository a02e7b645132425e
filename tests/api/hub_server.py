"""A local stand-in for the HuggingFace Hub's file protocol, for tests.

Serves model folders (by default every folder of tests/fixtures/models as
repo "fixtures/<folder>") the way huggingface.co does:

  GET /api/models/{id}/revision/{rev}[?blobs=true]
        {"id", "sha", "siblings": [{"rfilename", "size", "lfs": {"sha256", "size"}}]}
        (lfs only for *.safetensors, as on the Hub); 404 for a missing repo or revision
  GET /api/models?search=&filter=     search, a list of {"id", "tags", "pipeline_tag", ...}
  GET /{id}/resolve/{rev}/{file}
        small files: 200 with ETag "<sha256>"
        *.safetensors: 302 to /cdn/{id}/{file} with X-Linked-Etag "<sha256>" and
        X-Linked-Size, as the Hub does for LFS files
  GET /cdn/{id}/{file}                the bytes, with Range support (206/416)

Knobs (attributes of the server object, changeable while it runs):
  token         when set, /api and /resolve need "Authorization: Bearer <token>" (401 otherwise)
  drop_once     set of file names: the first transfer of each sends half its bytes then
                drops the connection (to test resume)
  corrupt       set of file names served with one byte flipped (announced sha256 unchanged)
  requests      list of {"method", "path", "range", "auth"} seen, for assertions
                (also served as JSON on GET /_requests, for tests in other processes)

Run standalone: python3 hub_server.py [--root DIR] [--port N] [--token T] [--drop FILE]...
[--corrupt FILE]...; it prints "PORT <n>" once listening.
"""
import argparse
import hashlib
import json
import os
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.environ.get("BS_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))
MODELS = os.path.join(FIXTURES, "models")
SKIP = {"expected.json", "crosscheck.json", "README.md"}


def _files(folder):
    out = []
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(base, f), folder)
            if rel not in SKIP:
                out.append(rel)
    return out


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FakeHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root=MODELS, org="fixtures", port=0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.repos = {}
        for name in sorted(os.listdir(root)):
            folder = os.path.join(root, name)
            if os.path.isfile(os.path.join(folder, "config.json")):
                self.repos[f"{org}/{name}"] = folder
        self.token = None
        self.drop_once = set()
        self.corrupt = set()
        # file name -> threading.Event: the file is served only once the
        # event is set (a download paused at a known point).
        self.gates = {}
        self.requests = []
        self.lock = threading.Lock()
        self._sha_cache = {}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def commit(self, repo):
        return hashlib.sha1(repo.encode()).hexdigest()

    def sha256(self, path):
        with self.lock:
            if path not in self._sha_cache:
                self._sha_cache[path] = _sha256(path)
            return self._sha_cache[path]

    def start(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # helpers
    def _json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self):
        token = self.server.token
        if not token:
            return True
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._json(401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _repo_file(self, parts):
        """Splits [org, name, ...rest] into (repo, folder, rest) or (None, None, None)."""
        if len(parts) < 2:
            return None, None, None
        repo = "/".join(parts[:2])
        return repo, self.server.repos.get(repo), parts[2:]

    def _safe_path(self, folder, rel):
        path = os.path.realpath(os.path.join(folder, rel))
        if not path.startswith(os.path.realpath(folder) + os.sep) or not os.path.isfile(path):
            return None
        if os.path.relpath(path, folder) in SKIP:
            return None
        return path

    def do_GET(self):
        srv = self.server
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path)
        with srv.lock:
            srv.requests.append({"method": "GET", "path": path, "range": self.headers.get("Range"),
                                 "auth": self.headers.get("Authorization")})
        parts = [p for p in path.split("/") if p]
        if parts == ["_requests"]:
            with srv.lock:
                return self._json(200, list(srv.requests))
        if parts[:2] == ["api", "models"] and len(parts) == 2:
            return self._search(urllib.parse.parse_qs(u.query))
        if parts[:2] == ["api", "models"]:
            if not self._authorized():
                return
            # /api/models/{org}/{name}/revision/{rev...}
            repo, folder, rest = self._repo_file(parts[2:])
            if folder is None:
                return self._json(404, {"error": "Repository not found"},
                                  {"X-Error-Code": "RepoNotFound"})
            if len(rest) < 2 or rest[0] != "revision":
                return self._json(404, {"error": "not found"})
            rev = "/".join(rest[1:])
            if rev not in ("main", srv.commit(repo)):
                return self._json(404, {"error": f"Invalid rev id: {rev}"},
                                  {"X-Error-Code": "RevisionNotFound"})
            siblings = []
            for rel in _files(folder):
                full = os.path.join(folder, rel)
                s = {"rfilename": rel, "size": os.path.getsize(full)}
                if rel.endswith(".safetensors"):
                    s["lfs"] = {"sha256": srv.sha256(full), "size": os.path.getsize(full)}
                siblings.append(s)
            return self._json(200, {"id": repo, "modelId": repo, "sha": srv.commit(repo),
                                    "siblings": siblings})
        if parts and parts[0] == "cdn":
            repo, folder, rest = self._repo_file(parts[1:])
            f = self._safe_path(folder, "/".join(rest)) if folder else None
            if f is None:
                return self._json(404, {"error": "Entry not found"})
            return self._send_file(f, "/".join(rest))
        # /{org}/{name}/resolve/{rev}/{file...}
        repo, folder, rest = self._repo_file(parts)
        if folder is None or len(rest) < 3 or rest[0] != "resolve":
            return self._json(404, {"error": "Repository not found"})
        if not self._authorized():
            return
        if rest[1] not in ("main", srv.commit(repo)):
            return self._json(404, {"error": "Revision not found"})
        rel = "/".join(rest[2:])
        f = self._safe_path(folder, rel)
        if f is None:
            return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        if rel.endswith(".safetensors"):
            self.send_response(302)
            self.send_header("Location", f"/cdn/{repo}/{rel}")
            self.send_header("X-Linked-Etag", f'"{srv.sha256(f)}"')
            self.send_header("X-Linked-Size", str(os.path.getsize(f)))
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef01234567"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        return self._send_file(f, rel, etag=srv.sha256(f))

    def _send_file(self, path, rel, etag=None):
        srv = self.server
        gate = srv.gates.get(os.path.basename(rel))
        if gate is not None:
            gate.wait(60)
        with open(path, "rb") as fh:
            data = fh.read()
        if rel in srv.corrupt or os.path.basename(rel) in srv.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        total = len(data)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        drop = False
        with srv.lock:
            key = os.path.basename(rel)
            if key in srv.drop_once:
                srv.drop_once.discard(key)
                drop = True
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        if etag:
            self.send_header("ETag", f'"{etag}"')
        self.end_headers()
        if drop:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def _search(self, q):
        search = (q.get("search") or [""])[0].lower()
        tag = (q.get("filter") or [""])[0]
        out = []
        for repo, folder in self.server.repos.items():
            with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                cfg = json.load(f)
            tags = ["safetensors", cfg.get("model_type", "")]
            if search and search not in repo.lower():
                continue
            if tag and tag not in tags:
                continue
            out.append({"id": repo, "modelId": repo, "tags": tags, "downloads": 0, "likes": 0,
                        "library_name": "transformers"})
        self._json(200, out)


try:
    import pytest

    @pytest.fixture
    def fake_hub():
        """A FakeHub serving tests/fixtures/models on a free port (import it into a test module)."""
        hub = FakeHub().start()
        yield hub
        hub.stop()
except ImportError:  # standalone use without pytest
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=MODELS)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--corrupt", action="append", default=[])
    args = ap.parse_args()
    hub = FakeHub(args.root, port=args.port)
    hub.token = args.token
    hub.drop_once = set(args.drop)
    hub.corrupt = set(args.corrupt)
    print(f"PORT {hub.server_address[1]}", flush=True)
    hub.serve_forever()


if __name__ == "__main__":
    main()
