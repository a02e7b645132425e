"""The web studio's files beside the API: embedded assets with content types,
strong ETags (304), precompressed gzip and a CSP; index.html for deep links;
API paths keep their JSON 404; `serve --web-dir` serves a folder instead."""
import gzip
import os
import re

from conftest import start_server


def test_index_and_deep_links_are_the_studio(server):
    for path in ("/", "/login", "/dashboard", "/playground/ner", "/hub", "/custom", "/keys", "/system"):
        r = server.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert '<div id="app">' in r.text
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers["Cache-Control"] == "no-cache"
    # index.html itself has no inline script: every <script> has a src.
    for tag in re.findall(r"<script[^>]*>", server.get("/").text):
        assert "src=" in tag


def test_assets_have_types_etags_and_gzip(server):
    html = server.get("/").text
    js = re.search(r'src="(/assets/[^"]+\.js)"', html).group(1)
    css = re.search(r'href="(/assets/[^"]+\.css)"', html).group(1)
    raw = server.get(js, headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200
    assert raw.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "immutable" in raw.headers["Cache-Control"]
    assert "Content-Encoding" not in raw.headers
    etag = raw.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    zipped = server.get(js, headers={"Accept-Encoding": "gzip, deflate"}, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    body = zipped.raw.read(decode_content=False)
    assert len(body) < len(raw.content)
    assert gzip.decompress(body) == raw.content
    assert server.get(js, headers={"Accept-Encoding": "gzip;q=0"}).headers.get("Content-Encoding") is None
    assert server.get(css).headers["Content-Type"] == "text/css; charset=utf-8"
    for inm in (etag, f'W/{etag}', f'"x", {etag}', "*"):
        r = server.get(js, headers={"If-None-Match": inm})
        assert r.status_code == 304 and r.content == b"", inm
        assert r.headers["ETag"] == etag
    assert server.get(js, headers={"If-None-Match": '"other"'}).status_code == 200
    assert server.request("HEAD", js).status_code == 200


def test_api_paths_keep_the_json_404(server):
    for path in ("/models/a/b/c/d", "/settings/x/y", "/assets/missing.js", "/health/x", "/nothing",
                 "/etc/passwd", "/dashboardx"):
        r = server.get(path)
        assert r.status_code == 404, path
        assert r.json()["success"] is False
    # Other methods on unknown paths are not the studio's.
    assert server.post("/playground/ner", json={}).status_code == 404
    # The API itself still answers.
    assert server.get("/health").json()["success"] is True


def test_web_dir_serves_a_folder(tmp_path):
    web = tmp_path / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><p>dev studio</p>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    srv = start_server(extra_args=("--web-dir", str(web)))
    try:
        assert "dev studio" in srv.get("/").text
        assert "dev studio" in srv.get("/dashboard").text
        r = srv.get("/assets/app.js")
        assert r.text == "console.log(1)"
        assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert srv.get("/assets/app.js", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
        assert srv.get("/assets/none.js").status_code == 404
        for path in ("/../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/..%2fsecret.txt"):
            r = srv.get(path)
            assert "outside" not in r.text, path
    finally:
        srv.stop()


def test_web_dir_without_index_is_refused(tmp_path):
    import subprocess
    from conftest import BIN
    r = subprocess.run([BIN, "serve", "--web-dir", str(tmp_path), "--port", "0"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert "index.html" in r.stderr


def test_studio_files_are_not_counted_against_the_per_ip_limit():
    """One page view fetches several files: the per-IP limit (the API's)
    leaves the studio's files alone, and still refuses the API past it."""
    srv = start_server()
    try:
        r = srv.request("PUT", "/settings/per_ip_requests_per_minute", json={"value": 5},
                        headers=srv.auth())
        assert r.status_code == 200, r.text
        js = re.search(r'src="(/assets/[^"]+\.js)"', srv.get("/").text).group(1)
        for path in ["/", "/dashboard", js] * 4:
            r = srv.get(path)
            assert r.status_code == 200, (path, r.status_code)
        codes = [srv.get("/health").status_code for _ in range(8)]
        assert 429 in codes, codes
    finally:
        srv.stop()
