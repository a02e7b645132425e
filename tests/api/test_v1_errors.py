"""Every error answer on a /v1/... path is in OpenAI's shape
{"error": {"message", "type", "param", "code"}}, whatever refused the
request: routing (404, 405 with Allow), the body limit (413 from
Content-Length and while a chunked body streams in), the body parser (400)
and authentication (401). Other paths keep the envelope."""
import json
import socket

import pytest


def openai_error(status, raw_body, typ="invalid_request_error", code=None):
    body = json.loads(raw_body)
    assert "success" not in body and "status_code" not in body, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert err["type"] == typ and err["code"] == code and err["param"] is None, err
    return err


def check(r, status, **kw):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return openai_error(status, r.content, **kw)


@pytest.mark.parametrize("method,path", [("GET", "/v1/nothing"), ("POST", "/v1/chat/completions"),
                                         ("GET", "/v1")])
def test_unknown_v1_path_is_404_in_openai_shape(server, method, path):
    err = check(server.request(method, path, headers=server.auth()), 404, code="unknown_url")
    assert path in err["message"]


def test_wrong_method_on_v1_is_405_in_openai_shape_with_allow(server):
    r = server.request("DELETE", "/v1/embeddings", headers=server.auth())
    err = check(r, 405)
    assert r.headers["Allow"] == "POST" and "POST" in err["message"]
    r = server.request("POST", "/v1/models", headers=server.auth())
    check(r, 405)
    assert r.headers["Allow"] == "GET"


def test_v1_body_over_limit_from_content_length_is_413_in_openai_shape(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 11534336\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            assert chunk, reply
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                      if l.lower().startswith(b"content-length:")][0])
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, body
            body += chunk
    assert head.startswith(b"HTTP/1.1 413"), head
    err = openai_error(413, body)
    assert "max_request_bytes" in err["message"]


def test_v1_streamed_body_over_limit_is_413_in_openai_shape(server):
    def chunks():
        block = b"x" * (1 << 20)
        for _ in range(11):
            yield block
    r = server.post("/v1/embeddings", data=chunks(),
                    headers={"Content-Type": "application/json", **server.auth()})
    check(r, 413)


@pytest.mark.parametrize("data,where", [
    (b'{"input": "a", "model": ', "line 1"),
    (b'{"input": "\xff\xfe", "model": "m"}', "byte 11"),
    (b"", "empty"),
    (b"[" * 5000 + b"]" * 5000, "nest"),
])
def test_v1_malformed_bodies_are_400_in_openai_shape(server, data, where):
    r = server.post("/v1/embeddings", data=data,
                    headers={"Content-Type": "application/json", **server.auth()})
    err = check(r, 400)
    assert where in err["message"].lower(), err


def test_v1_missing_key_is_401_in_openai_shape(server):
    check(server.post("/v1/embeddings", json={"input": "a", "model": "m"}), 401, code="invalid_api_key")
    check(server.get("/v1/models"), 401, code="invalid_api_key")
    check(server.get("/v1/nothing"), 404, code="unknown_url")  # unknown comes before auth


def test_other_paths_keep_the_envelope(server):
    for r, status in ((server.get("/nothing"), 404), (server.request("DELETE", "/health"), 405),
                      (server.get("/v1x/models"), 404), (server.get("/models"), 401)):
        assert r.status_code == status
        body = r.json()
        assert body["success"] is False and body["status_code"] == status
