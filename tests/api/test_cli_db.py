"""`bertstudio db` through the real binary on fresh data dirs: export ->
import into another data dir gives the same documents, backup while another
process writes restores to a consistent store, sweep removes exactly what is
past retention, and bad input fails with exit 1 (2 for usage) without
touching the store."""
import datetime
import json
import os
import sqlite3
import subprocess
import threading

import pytest

from conftest import BIN

COLLECTIONS = ["custom_tasks", "api_keys", "user_sessions", "model_cache", "execution_logs", "system_settings"]


def bs(*args, data_dir=None):
    cmd = [BIN, *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("BERTSTUDIO_DATA_DIR", "BERTSTUDIO_STORE")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def ok(*args, data_dir=None):
    r = bs(*args, data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    return r


def iso(days_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_jsonl(directory, collection, docs):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, collection + ".jsonl"), "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")


def export(data_dir, out_dir):
    """{collection: {_id: document}} as exported by `db export`."""
    r = ok("db", "export", str(out_dir), data_dir=data_dir)
    docs = {}
    for c in COLLECTIONS:
        with open(os.path.join(out_dir, c + ".jsonl"), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        docs[c] = {d["_id"]: d for d in rows}
        assert f"exported {len(rows)} {c}" in r.stdout
    return docs


def seed_docs():
    """One or more valid documents of every collection, with fixed _ids."""
    return {
        "custom_tasks": [
            {"_id": "6b0000000000000000000001", "name": "shout", "model_name": "bert-base-uncased",
             "function_code": "return {text = string.upper(input.text)}", "created_at": iso(-3),
             "description": "upper case", "tags": ["demo", "text"]},
        ],
        "user_sessions": [
            {"_id": "6b0000000000000000000011", "session_id": "s-old", "api_key_id": "6b00000000000000000000a1",
             "created_at": iso(-140), "expires_at": iso(-100), "is_active": False},
            {"_id": "6b0000000000000000000012", "session_id": "s-live", "api_key_id": "6b00000000000000000000a1",
             "created_at": iso(-1), "expires_at": iso(1), "is_active": True},
        ],
        "model_cache": [
            {"_id": "6b0000000000000000000021", "model_name": "distilbert-base-uncased",
             "task_type": "classification", "file_size": 1234, "cache_priority": "high"},
        ],
        "execution_logs": [
            {"_id": "6b0000000000000000000031", "task_type": "ner", "model_name": "bert-base-cased",
             "execution_time": 0.25, "status": "success", "timestamp": iso(-200)},
            {"_id": "6b0000000000000000000032", "task_type": "qa", "model_name": "bert-base-cased",
             "execution_time": 0.5, "status": "error", "timestamp": iso(-1)},
        ],
        "system_settings": [
            {"_id": "6b0000000000000000000041", "setting_key": "demo_flag", "setting_value": True,
             "setting_type": "boolean", "created_at": iso(-2)},
        ],
    }


def seeded(tmp_path, name="a"):
    """A data dir holding two API keys and the seed documents."""
    data = tmp_path / name
    ok("keys", "create", "--name", "reader", data_dir=data)
    ok("keys", "create", "--name", "ops", "--permissions", "tasks:execute,admin:read", data_dir=data)
    src = tmp_path / (name + "-seed")
    for c, docs in seed_docs().items():
        write_jsonl(src, c, docs)
    r = ok("db", "import", str(src), data_dir=data)
    assert "imported 2 execution_logs" in r.stdout and "imported 1 custom_tasks" in r.stdout
    return data


def test_export_import_into_another_data_dir_gives_the_same_documents(tmp_path):
    a = seeded(tmp_path)
    first = export(a, tmp_path / "e1")
    assert len(first["api_keys"]) == 2
    assert {d["name"] for d in first["api_keys"].values()} == {"reader", "ops"}
    for c, docs in seed_docs().items():
        assert set(first[c]) == {d["_id"] for d in docs}, c

    b = tmp_path / "b"
    r = ok("db", "import", str(tmp_path / "e1"), data_dir=b)
    assert "imported 2 api_keys" in r.stdout
    assert export(b, tmp_path / "e2") == first
    # same _ids are replaced, not duplicated
    ok("db", "import", str(tmp_path / "e1"), data_dir=b)
    assert export(b, tmp_path / "e3") == first
    listed = ok("keys", "list", data_dir=b).stdout
    assert "reader" in listed and "ops" in listed


def test_backup_while_a_writer_runs_restores_a_consistent_store(tmp_path):
    a = tmp_path / "a"
    ok("keys", "create", "--name", "w0", data_dir=a)
    done, stop, failures = [], threading.Event(), []
    first_writes = threading.Semaphore(0)

    def writer():
        i = 1
        while not stop.is_set() and i < 400:
            r = bs("keys", "create", "--name", f"w{i}", data_dir=a)
            if r.returncode != 0:
                failures.append(r.stderr)
                return
            done.append(f"w{i}")
            first_writes.release()
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(3):  # the writer is really running when the backup starts
            assert first_writes.acquire(timeout=60)
        before = ["w0", *done]
        r = bs("db", "backup", str(tmp_path / "snap.db"), data_dir=a)
        after = ["w0", *done]
        for _ in range(2):  # and goes on writing after it
            assert first_writes.acquire(timeout=60)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    assert not failures, failures
    assert "backed up the sqlite store" in r.stdout

    c = tmp_path / "c"
    ok("keys", "create", "--name", "only-in-c", data_dir=c)
    ok("db", "restore", str(tmp_path / "snap.db"), data_dir=c)
    with sqlite3.connect(str(c / "bertstudio.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored = export(c, tmp_path / "ec")
    names = [d["name"] for d in restored["api_keys"].values()]
    assert len(names) == len(set(names))
    # a snapshot: every key written before the backup, none after it, and
    # nothing of what the restored store held before
    assert set(before) <= set(names) <= set(after)
    assert "only-in-c" not in names
    # every restored document is valid: it imports into a fresh store
    r = ok("db", "import", str(tmp_path / "ec"), data_dir=tmp_path / "d")
    assert f"imported {len(names)} api_keys" in r.stdout


def test_sweep_removes_exactly_what_is_past_retention(tmp_path):
    a = seeded(tmp_path)
    r = ok("db", "sweep", data_dir=a)
    assert "removed 1 execution_logs and 1 user_sessions past retention" in r.stdout
    left = export(a, tmp_path / "e")
    assert set(left["execution_logs"]) == {"6b0000000000000000000032"}
    assert set(left["user_sessions"]) == {"6b0000000000000000000012"}
    assert len(left["api_keys"]) == 2 and len(left["custom_tasks"]) == 1
    r = ok("db", "sweep", data_dir=a)
    assert "removed 0 execution_logs and 0 user_sessions" in r.stdout


def test_bad_backup_file_is_refused_and_the_store_is_untouched(tmp_path):
    a = seeded(tmp_path)
    before = export(a, tmp_path / "e1")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a sqlite database\n" * 100)
    r = bs("db", "restore", str(bad), data_dir=a)
    assert r.returncode == 1
    assert str(bad) in r.stderr
    r = bs("db", "restore", str(tmp_path / "missing.db"), data_dir=a)
    assert r.returncode == 1
    assert "missing.db" in r.stderr
    assert export(a, tmp_path / "e2") == before


def test_import_errors_name_the_input(tmp_path):
    a = seeded(tmp_path)
    r = bs("db", "import", str(tmp_path / "no-such-dir"), data_dir=a)
    assert r.returncode == 1
    assert "no-such-dir" in r.stderr
    f = tmp_path / "file.txt"
    f.write_text("x")
    r = bs("db", "import", str(f), data_dir=a)
    assert r.returncode == 1
    assert "not a directory" in r.stderr
    src = tmp_path / "invalid"
    write_jsonl(src, "custom_tasks", [{"_id": "6b00000000000000000000ff", "name": "",
                                       "model_name": "m", "function_code": "x", "created_at": iso(0)}])
    r = bs("db", "import", str(src), data_dir=a)
    assert r.returncode == 1
    assert "custom_tasks" in r.stderr and "name" in r.stderr
    with open(src / "custom_tasks.jsonl", "w") as out:
        out.write("{not json\n")
    r = bs("db", "import", str(src), data_dir=a)
    assert r.returncode == 1
    assert "custom_tasks.jsonl" in r.stderr


def test_export_into_a_missing_directory_fails(tmp_path):
    a = seeded(tmp_path)
    r = bs("db", "export", str(tmp_path / "no" / "such" / "dir"), data_dir=a)
    assert r.returncode == 1
    assert "cannot create" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["backup"], "needs a FILE"),
    (["import"], "needs a DIR"),
    (["sweep", "extra"], "too many arguments"),
    (["backup", "a", "b"], "too many arguments"),
    (["frobnicate"], "unknown command"),
    ([], "usage:"),
    (["--tasks", "-5", "bench"], "--tasks -5 is not a number"),
    (["--tasks", "12abc", "bench"], "--tasks 12abc is not a number"),
    (["--logs", "99999999999999999999", "bench"], "--logs 99999999999999999999 is not a number"),
    (["--logs", "+3", "bench"], "--logs +3 is not a number"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    r = bs("db", *args, data_dir=tmp_path / "a")
    assert r.returncode == 2
    assert message in r.stderr
    assert not (tmp_path / "a").exists()


def test_help_lists_every_command():
    r = bs("db", "--help")
    assert r.returncode == 0
    for cmd in ("backup FILE", "restore FILE", "export DIR", "import DIR", "sweep", "bench"):
        assert "db " + cmd in r.stdout
