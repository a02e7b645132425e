"""`bertstudio run TASK --model DIR` through the real binary: a sample of the
pipeline fixtures (the printed JSON must be exactly the response `data`
shape), --batch mode, and bad input (exit 1 with a clear message, 2 for
usage errors)."""
import json
import os
import subprocess

import pytest

from conftest import BIN, FIXTURES

FILES = {
    "classification": "classification.jsonl",
    "ner": "ner.jsonl",
    "qa": "qa.jsonl",
    "fill-mask": "fill-mask.jsonl",
    "embeddings": "embeddings.jsonl",
    "features": "features.jsonl",
    "summarization": "summarization.jsonl",
}


def model_dir(name):
    return os.path.join(FIXTURES, "models", name)


def run(task, model, request=None, stdin=None, args=()):
    cmd = [BIN, "run", task, "--model", model_dir(model), "--threads", "1", *args]
    if request is not None:
        cmd += ["--json", json.dumps(request)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


def sample_cases():
    """Every third case of each file, plus every case with a list input."""
    out = []
    for task, name in FILES.items():
        with open(os.path.join(FIXTURES, "pipelines", name), encoding="utf-8") as f:
            for i, line in enumerate(f):
                case = json.loads(line)
                if i % 3 == 0 or isinstance(case["request"].get("text"), list):
                    out.append(pytest.param(task, case, id=case["id"]))
    return out


def assert_same(expected, actual, path="data"):
    if isinstance(expected, float) or (isinstance(expected, int) and isinstance(actual, float)
                                       and not isinstance(expected, bool)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), path
        assert abs(expected - actual) <= 1e-4, f"{path}: {actual} vs {expected}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing"
            assert_same(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: length"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{path}[{i}]")
    else:
        assert expected == actual and type(expected) is type(actual), f"{path}: {actual!r} vs {expected!r}"


@pytest.mark.parametrize("task,case", sample_cases())
def test_fixture_case(task, case):
    r = run(task, case["model"], stdin=json.dumps(case["request"]))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    expected = dict(case["expected"])
    expected.pop("token_ids", None)
    expected.pop("sequence_score", None)
    assert_same(expected, data)
    assert isinstance(data.get("truncated"), bool)
    # exactly the data object: no envelope, only the documented keys
    keys = {"classification": {"results"}, "ner": {"results"}, "qa": {"results"},
            "fill-mask": {"results"}, "embeddings": {"embeddings", "dimensions"},
            "features": {"features"}, "summarization": {"results"}}[task]
    assert set(data) == keys | {"truncated"}


def test_batch_mode_one_line_per_request():
    reqs = [{"text": "I loved it.", "top_k": None}, {"text": ""}, {"text": ["a", "b"], "top_k": 1}]
    stdin = "".join(json.dumps(r) + "\n" for r in reqs)
    r = run("classification", "tiny-bert-classification", stdin=stdin, args=("--batch",))
    assert r.returncode == 1  # one line failed
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(lines) == 3
    assert len(lines[0]["results"]) == 1 and len(lines[0]["results"][0]) == 3
    assert "empty" in lines[1]["error"]
    assert [len(x) for x in lines[2]["results"]] == [1, 1]


BAD = [
    ("classification", "tiny-bert-classification", {"text": ""}, "empty"),
    ("classification", "tiny-bert-classification", {"text": ["x"] * 10000}, "at most 256"),
    ("classification", "tiny-bert-classification", {"text": "x", "top_k": 0}, "top_k"),
    ("classification", "tiny-bert-classification", {"text": "x", "colour": 1}, "unknown field 'colour'"),
    ("classification", "tiny-bert-classification", {"text": "x", "function_to_apply": "tanh"},
     "softmax, sigmoid, none"),
    ("classification", "tiny-bert-mlm", {"text": "x"}, "sequence-classification head"),
    ("classification", "tiny-bert-classification", {"text": 5}, "text must be a string or a list of strings"),
    ("ner", "tiny-bert-ner", {"text": "x", "aggregation_strategy": "median"},
     "none, simple, first, average, max"),
    ("fill-mask", "tiny-bert-mlm", {"text": "no mask here"}, "no mask token [MASK]"),
    ("fill-mask", "tiny-bert-mlm", {"text": "a [MASK]", "top_k": 0}, "top_k"),
    ("qa", "tiny-bert-qa", {"question": "why " * 200, "context": "because"}, "question is too long"),
    ("qa", "tiny-bert-qa", {"question": "q", "context": "c", "max_seq_len": 100000}, "max_seq_len"),
    ("qa", "tiny-bert-qa", {"question": "q"}, "context is required"),
    ("embeddings", "tiny-bert-embeddings", {"text": "x", "pooling": "sum"}, "mean, cls, max, mean_sqrt_len"),
    ("summarization", "tiny-bart", {"text": "x", "num_beams": 0}, "num_beams"),
    ("summarization", "tiny-bart", {"text": "x", "early_stopping": "sometimes"}, "early_stopping"),
    ("summarization", "tiny-bert-mlm", {"text": "x"}, "BartForConditionalGeneration"),
]


@pytest.mark.parametrize("task,model,request_,message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_clear_error(task, model, request_, message):
    r = run(task, model, stdin=json.dumps(request_))
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    assert r.stderr.startswith("bertstudio: ")
    assert message in r.stderr


def test_huge_top_k_is_capped_to_what_exists():
    r = run("fill-mask", "tiny-bert-mlm", {"text": "a [MASK] b", "top_k": 1000000, "targets": ["the", "a"]})
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["results"][0]) == 2
    r = run("classification", "tiny-bert-classification", {"text": "x", "top_k": 1000000})
    assert len(json.loads(r.stdout)["results"][0]) == 3
    # QA: every span of every window, merged by text, at most BS_PIPELINE_MAX_RESULTS
    context = " ".join(f"word{i} fact{i % 7}" for i in range(300))
    r = run("qa", "tiny-bert-qa", stdin=json.dumps({"question": "which?", "context": context, "top_k": 1000000}))
    assert r.returncode == 0, r.stderr
    answers = json.loads(r.stdout)["results"]
    assert 1000 < len(answers) <= 10000
    scores = [a["score"] for a in answers]
    assert scores == sorted(scores, reverse=True)
    assert len({a["answer"].lower() for a in answers}) == len(answers)


def test_long_inputs_are_truncated_and_flagged():
    text = "word " * 5000
    r = run("classification", "tiny-bert-classification", {"text": text, "top_k": 1})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["truncated"] is True
    r = run("features", "tiny-bert-embeddings", {"text": text})
    data = json.loads(r.stdout)
    assert data["truncated"] is True and len(data["features"][0]) == 128


def test_megabyte_context_is_refused_with_a_limit():
    request = {"question": "q?", "context": "lorem ipsum " * 100000}  # 1.2 MB
    r = run("qa", "tiny-bert-qa", stdin=json.dumps(request))
    assert r.returncode == 1
    assert "limit" in r.stderr
    request["context"] = "lorem ipsum " * 10000  # 120 kB, 4000 windows of the default 128 tokens
    r = run("qa", "tiny-bert-qa", stdin=json.dumps(request))
    assert r.returncode == 1 and "windows" in r.stderr and "limit" in r.stderr
    request["context"] = "lorem ipsum " * 300  # fits in the window limit: answers
    r = run("qa", "tiny-bert-qa", stdin=json.dumps(request))
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["results"]) == 1


def test_invalid_json_and_usage_errors():
    r = run("ner", "tiny-bert-ner", stdin="{not json")
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    r = subprocess.run([BIN, "run", "ner"], capture_output=True, text=True)
    assert r.returncode == 2 and "--model" in r.stderr
    r = subprocess.run([BIN, "run", "translate", "--model", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown task" in r.stderr
    r = run("ner", "tiny-bert-ner", {"text": "x"})
    assert r.returncode == 0
    r = subprocess.run([BIN, "run", "ner", "--model", "/nonexistent"], capture_output=True, text=True,
                       input="{}")
    assert r.returncode == 1 and r.stderr.startswith("bertstudio: ")


def test_text_pairs():
    single = run("classification", "tiny-bert-classification", {"text": "It rains.", "top_k": None})
    pair = run("classification", "tiny-bert-classification",
               {"text": "It rains.", "text_pair": "The streets are wet.", "top_k": None})
    both = run("classification", "tiny-bert-classification",
               {"text": ["It rains.", "It rains."], "text_pair": ["The streets are wet.", None], "top_k": None})
    assert single.returncode == pair.returncode == 0
    assert both.returncode == 1 and "text_pair[1] must be a string" in both.stderr
    s, p = json.loads(single.stdout)["results"][0], json.loads(pair.stdout)["results"][0]
    assert {x["label"] for x in s} == {x["label"] for x in p}
    assert abs(sum(x["score"] for x in p) - 1) < 1e-6  # softmax over the labels
    assert s != p  # the pair is part of the input
    both = run("classification", "tiny-bert-classification",
               {"text": ["It rains.", "x"], "text_pair": ["The streets are wet.", "y"], "top_k": None})
    assert_same(p, json.loads(both.stdout)["results"][0])  # batched = alone
