#!/usr/bin/python3
"""Adds the two task models of bench/serve/mixed.py to make-variants.py's
output, from the same BERT-base-shaped random weights (safetensors only; no
ONNX copy, since only our server runs them):

  OUT/ner  BertForTokenClassification, random 9-label CoNLL head
  OUT/qa   BertForQuestionAnswering, random span head (qa_outputs)

usage: /usr/bin/python3 bench/serve/make-heads.py BASE_DIR OUT_DIR
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("make_variants",
                                              os.path.join(HERE, "..", "pipeline", "make-variants.py"))
mv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mv)

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def write(base, out, name, cfg_extra, head):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    w = dict(mv.read_safetensors(os.path.join(base, "model.safetensors")))
    w.update(head)
    mv.mm.write_safetensors(os.path.join(d, "model.safetensors"), w)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(cfg, **cfg_extra), f, indent=2)
    for n in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(os.path.join(base, n), os.path.join(d, n))


def main():
    if len(sys.argv) != 3 or not os.path.isfile(os.path.join(sys.argv[1], "model.safetensors")):
        sys.exit("usage: /usr/bin/python3 bench/serve/make-heads.py BASE_DIR OUT_DIR\n(BASE_DIR: bench/make-model.py's output)")
    base, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(base, "config.json")) as f:
        H = json.load(f)["hidden_size"]
    rng = np.random.default_rng(2)

    def lin(o):
        return (rng.standard_normal((o, H)) / np.sqrt(H)).astype(np.float32)

    n = len(NER_LABELS)
    write(base, out, "ner", {"architectures": ["BertForTokenClassification"],
                             "id2label": {str(i): l for i, l in enumerate(NER_LABELS)},
                             "label2id": {l: i for i, l in enumerate(NER_LABELS)}},
          {"classifier.weight": lin(n), "classifier.bias": np.zeros(n, dtype=np.float32)})
    write(base, out, "qa", {"architectures": ["BertForQuestionAnswering"]},
          {"qa_outputs.weight": lin(2), "qa_outputs.bias": np.zeros(2, dtype=np.float32)})
    print("wrote", os.path.join(out, "ner"), "and", os.path.join(out, "qa"))


if __name__ == "__main__":
    main()
