"""One model, one folder (issue 17 M3): model `X` and models `X/*` used to
share a folder, so importing or deleting `X` destroyed every `X/*` model's
files while their documents still said is_cached. Folders are now flat
(`org--name`), old data dirs are moved at start, and a name whose folder is
another model's is refused with 409."""
import os
import shutil

from conftest import FIXTURES, start_server
from test_models import check_folder_matches_fixture

MODELS = os.path.join(FIXTURES, "models")


def import_model(srv, path, name):
    return srv.post("/models/import", headers=srv.auth(), json={"path": path, "model_name": name})


def test_import_and_delete_x_leave_x_slash_y(tmp_path):
    srv = start_server()
    try:
        r = import_model(srv, os.path.join(MODELS, "tiny-bert-ner"), "X/y")
        assert r.status_code == 201, r.text
        xy = r.json()["data"]
        assert xy["local_path"] == os.path.join(os.path.realpath(srv.data_dir), "models", "X--y")
        r = import_model(srv, os.path.join(MODELS, "tiny-bert-qa"), "X")
        assert r.status_code == 201, r.text
        assert check_folder_matches_fixture(xy["local_path"], "tiny-bert-ner") == xy["checksum"]
        r = srv.request("DELETE", "/models/X", headers=srv.auth())
        assert r.status_code == 200, r.text
        assert check_folder_matches_fixture(xy["local_path"], "tiny-bert-ner") == xy["checksum"]
        r = srv.get("/models/X/y/info", headers=srv.auth())
        assert r.status_code == 200 and r.json()["data"]["is_cached"] is True
        r = srv.post("/tasks/ner", headers=srv.auth(), json={"text": "Ada", "model_name": "X/y"})
        assert r.status_code in (200, 503), r.text
        # A name that would land in X/y's folder is refused; deleting it
        # (nothing is registered under it) touches nothing.
        r = import_model(srv, os.path.join(MODELS, "tiny-bert-qa"), "X--y")
        assert r.status_code == 409, r.text
        assert "X/y" in r.json()["detail"]
        assert srv.request("DELETE", "/models/X--y", headers=srv.auth()).status_code == 404
        assert check_folder_matches_fixture(xy["local_path"], "tiny-bert-ner") == xy["checksum"]
    finally:
        srv.stop()


def test_old_layout_moved_at_start(tmp_path):
    """A data dir laid out the old way (models/demo/<name>, with models/demo
    itself holding a model) is moved to models/demo--<name> at start."""
    srv = start_server(env={"BERTSTUDIO_DEMO_MODELS": MODELS})
    data, key = srv.data_dir, srv.admin_key
    r = import_model(srv, os.path.join(MODELS, "tiny-bert-qa"), "demo")
    assert r.status_code == 201, r.text
    srv.stop()
    models = os.path.join(data, "models")
    demos = sorted(d for d in os.listdir(models) if d.startswith("demo--"))
    assert len(demos) >= 7
    for d in demos:
        os.rename(os.path.join(models, d), os.path.join(models, "demo", d[len("demo--"):]))
    srv = start_server(data_dir=data)
    srv.admin_key = key
    try:
        assert sorted(d for d in os.listdir(models) if d.startswith("demo--")) == demos
        listed = {m["model_name"]: m for m in srv.get("/models", headers=srv.auth()).json()["data"]["models"]}
        for d in demos:
            m = listed["demo/" + d[len("demo--"):]]
            assert m["local_path"] == os.path.join(os.path.realpath(models), d)
            assert check_folder_matches_fixture(m["local_path"], d[len("demo--"):]) == m["checksum"]
        # "demo" holds its own files only.
        own = os.path.join(models, "demo")
        assert not any(os.path.isdir(os.path.join(own, f)) for f in os.listdir(own))
        assert srv.request("DELETE", "/models/demo", headers=srv.auth()).status_code == 200
        for d in demos:
            assert os.path.isdir(os.path.join(models, d))
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)
