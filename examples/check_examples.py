#!/usr/bin/python3
"""Runs one example program on the fixture models and checks what it prints
against the reference outputs of tests/fixtures (tokenizer cases, pipeline
answers, the models' expected.json), with the fixtures' tolerances.

    check_examples.py tokenize|embed|classify|forward BINARY [FIXTURES_DIR]
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

ATOL = 1e-4  # the fixtures' tolerance on scores, vectors and hidden states


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(binary, *args):
    # Arguments as UTF-8 bytes: the examples take UTF-8 text whatever the locale.
    p = subprocess.run([binary] + [a.encode() for a in args], capture_output=True, timeout=60)
    out = p.stdout.decode()
    if p.returncode != 0:
        fail(f"{os.path.basename(binary)} {args[0]} exited {p.returncode}: {p.stderr.decode()}")
    print(out, end="")
    return out.splitlines()


def close(got, want, what):
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=ATOL):
        fail(f"{what}: got {got.tolist()}, expected {want.tolist()}")


def equal(got, want, what):
    if got != want:
        fail(f"{what}: got {got!r}, expected {want!r}")


def jsonl(path, case_id):
    with open(path, encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            if case["id"] == case_id:
                return case
    fail(f"{path}: no case {case_id}")


def check_tokenize(binary, fx):
    row = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(-|\d+)\s+\[(\d+), (\d+)\)\s+(.*)$")
    # A model folder with a single text; a tokenizer.json path with a pair.
    for source, case_id in [("bert-base-uncased", "english-001"),
                            ("roberta-base/tokenizer.json", "pair-005")]:
        case = jsonl(f"{fx}/tokenizers/{source.split('/')[0]}/cases.jsonl", case_id)
        inp, want = case["input"], case["expected"]["encodings"][0]
        args = [f"{fx}/tokenizers/{source}", inp["text"]]
        if inp.get("text_pair") is not None:
            args.append(inp["text_pair"])
        lines = run(binary, *args)
        ids = [int(x) for x in next(l for l in lines if l.startswith("ids:"))[4:].split()]
        rows = [row.match(l).groups() for l in lines if row.match(l)]
        decoded = next(l for l in lines if l.startswith("decoded: "))[len("decoded: "):]
        equal(ids, want["ids"], f"{case_id} ids")
        equal([int(r[1]) for r in rows], want["ids"], f"{case_id} table ids")
        equal([int(r[2]) for r in rows], want["type_ids"], f"{case_id} type ids")
        equal([None if r[3] == "-" else int(r[3]) for r in rows], want["sequence_ids"],
              f"{case_id} sequence ids")
        equal([[int(r[4]), int(r[5])] for r in rows], want["offsets"], f"{case_id} offsets")
        equal([r[6] for r in rows], want["tokens"], f"{case_id} tokens")
        equal(decoded, want["decoded"], f"{case_id} decoded")


def check_embed(binary, fx):
    # The model's own default is mean pooling + Normalize, what the example asks for.
    case = jsonl(f"{fx}/pipelines/embeddings.jsonl", "emb-default-batch-mixed")
    texts, want = case["request"]["text"], np.array(case["expected"]["embeddings"])
    lines = run(binary, f"{fx}/models/{case['model']}", *texts)
    head = lines.index(next(l for l in lines if l.startswith("embeddings (first")))
    m = re.match(r"embeddings \(first (\d+) of (\d+) dimensions\)", lines[head])
    show, dims = int(m.group(1)), int(m.group(2))
    equal(dims, want.shape[1], "dimensions")
    vec = [[float(x) for x in lines[head + 1 + i].split("]", 1)[1].split()] for i in range(len(texts))]
    close(vec, want[:, :show], "first dimensions of the embeddings")
    cos_at = lines.index("cosine similarity:")
    cos = [[float(x) for x in lines[cos_at + 2 + i].split("]", 1)[1].split()] for i in range(len(texts))]
    unit = want / np.linalg.norm(want, axis=1, keepdims=True)
    close(cos, unit @ unit.T, "cosine similarity matrix")


def parse_groups(lines):
    """[i] text, then indented result lines -> list of lists of fields."""
    groups = []
    for l in lines:
        if re.match(r"^\[\d+\] ", l):
            groups.append([])
        elif l.startswith("    ") and groups and l.strip() != "(no entities)":
            groups[-1].append(l)
    return groups


def check_classify(binary, fx):
    for case_id in ["cls-bert-batch", "cls-roberta-multilabel-default"]:
        case = jsonl(f"{fx}/pipelines/classification.jsonl", case_id)
        texts = case["request"]["text"]
        texts = texts if isinstance(texts, list) else [texts]
        groups = parse_groups(run(binary, f"{fx}/models/{case['model']}", *texts))
        want = case["expected"]["results"]
        equal(len(groups), len(want), f"{case_id} number of results")
        for g, w in zip(groups, want):
            fields = [l.split() for l in g]
            equal([f[0] for f in fields], [x["label"] for x in w], f"{case_id} labels")
            close([float(f[1]) for f in fields], [x["score"] for x in w], f"{case_id} scores")
    case = jsonl(f"{fx}/pipelines/ner.jsonl", "ner-bert-batch-simple")
    groups = parse_groups(run(binary, f"{fx}/models/{case['model']}", *case["request"]["text"]))
    want = case["expected"]["results"]
    equal(len(groups), len(want), "ner number of results")
    ent = re.compile(r"^\s+(\S+)\s+(\S+)\s+\[(\d+), (\d+)\)\s+(.*)$")
    for g, w in zip(groups, want):
        fields = [ent.match(l).groups() for l in g]
        equal([(f[0], int(f[2]), int(f[3]), f[4]) for f in fields],
              [(x["entity_group"], x["start"], x["end"], x["word"]) for x in w], "ner entities")
        close([float(f[1]) for f in fields], [x["score"] for x in w], "ner scores")


def check_forward(binary, fx):
    # BERT with a pooler and token types; RoBERTa without either.
    for model in ["tiny-bert-embeddings", "tiny-roberta-classification"]:
        with open(f"{fx}/models/{model}/expected.json", encoding="utf-8") as f:
            case = next(c for c in json.load(f) if c["id"] == "batch_padded")
        texts = [t[0] for t in case["texts"]]
        lines = run(binary, f"{fx}/models/{model}", *texts)
        lens = [sum(m) for m in case["attention_mask"]]
        hidden = np.array(case["outputs"]["last_hidden_state"])
        equal(next(l for l in lines if l.startswith("last_hidden_state:")),
              f"last_hidden_state: [{sum(lens)}][{hidden.shape[2]}]", f"{model} shape")
        seq_at = [i for i, l in enumerate(lines) if l.startswith("  sequence ")]
        equal(len(seq_at), len(texts), f"{model} number of sequences")
        for b, at in enumerate(seq_at):
            ids = [int(x) for x in lines[at + 1].split(":")[1].split()]
            equal(ids, case["input_ids"][b][:lens[b]], f"{model} sequence {b} ids")
            for k, pos in enumerate([0, lens[b] - 1]):
                vals = [float(x) for x in lines[at + 2 + k].split()[3:-1]]
                close(vals, hidden[b, pos, :len(vals)], f"{model} sequence {b} token {pos}")
        pooled = [l for l in lines if re.match(r"^    sequence \d+ ", l)]
        if "pooler_output" in case["outputs"]:
            want = np.array(case["outputs"]["pooler_output"])
            equal(len(pooled), len(texts), f"{model} pooler rows")
            for b, l in enumerate(pooled):
                vals = [float(x) for x in l.split()[2:-1]]
                close(vals, want[b, :len(vals)], f"{model} pooler_output {b}")
        else:
            equal(pooled, [], f"{model} pooler rows (the model has no pooler)")
        err = next(l for l in lines if l.startswith("error handling:"))
        if "-> -6 (" not in err or "outside the vocabulary" not in err:
            fail(f"{model}: the out-of-vocabulary error is not reported: {err}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    fixtures = sys.argv[3] if len(sys.argv) == 4 else os.environ.get("BS_FIXTURES", "tests/fixtures")
    checks = {"tokenize": check_tokenize, "embed": check_embed, "classify": check_classify,
              "forward": check_forward}
    if sys.argv[1] not in checks:
        sys.exit(__doc__)
    checks[sys.argv[1]](sys.argv[2], fixtures)
    print("OK")
