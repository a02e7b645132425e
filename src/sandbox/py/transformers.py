"""BERT Studio's transformers shim: AutoTokenizer, AutoModel*, pipeline()
for the models of the server's cache, run by the server's engine over the
sandbox's channel (docs/custom-tasks.md lists the subset). Models are
loaded once, in the server, and shared with the built-in tasks."""

import json as _json

import numpy as _np

import _bs_channel
import torch as _torch

__version__ = "4.40.0+bertstudio.shim"


def _unsupported(name):
    raise NotImplementedError(f"not supported by BERT Studio's torch shim: {name}")


class EngineError(RuntimeError):
    pass


def _call(op, **args):
    args["op"] = op
    ans = _json.loads(_bs_channel.call(_json.dumps(args)))
    if not ans.get("ok"):
        raise EngineError(ans.get("error") or "the engine failed")
    return ans.get("value")


_loaded = {}  # name -> the engine's description; a child lives for one run


def _info(name):
    if not isinstance(name, str) or not name:
        raise ValueError("from_pretrained needs a model name (a string)")
    if name not in _loaded:
        _loaded[name] = _call("load", model=name)
    return _loaded[name]


def _as_rows(x):
    """ids as a list of rows (lists of ints), from a Tensor, array or lists."""
    if isinstance(x, _torch.Tensor):
        x = x.numpy()
    a = _np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"expected ids of shape [batch, tokens], got {list(a.shape)}")
    return a


class BatchEncoding(dict):
    """The tokenizer's answer: a dict that also answers attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, *args, **kwargs):
        return self

    def tokens(self, i=0):
        return list(self._tokens[i]) if hasattr(self, "_tokens") else []


class PreTrainedTokenizer:
    def __init__(self, name, info):
        self.name_or_path = name
        self._info = info
        self.model_max_length = info.get("model_max_length") or 512
        self.vocab_size = info.get("vocab_size")
        sp = info.get("special_tokens") or {}
        for kind in ("pad", "cls", "sep", "mask", "unk", "bos", "eos"):
            t = sp.get(kind) or {}
            setattr(self, f"{kind}_token", t.get("token"))
            setattr(self, f"{kind}_token_id", t.get("id"))
        self.padding_side = "right"

    @classmethod
    def from_pretrained(cls, name, *args, **kwargs):
        return cls(name, _info(name))

    def __repr__(self):
        return f"PreTrainedTokenizer(name_or_path='{self.name_or_path}')"

    def __len__(self):
        return self.vocab_size or 0

    def __call__(self, text=None, text_pair=None, padding=False, truncation=None, max_length=None,
                 return_tensors=None, return_offsets_mapping=False, add_special_tokens=True,
                 return_attention_mask=True, return_token_type_ids=True, **kwargs):
        for k in kwargs:
            _unsupported(f"tokenizer argument '{k}'")
        if text is None:
            raise ValueError("the tokenizer needs text")
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        pairs = None
        if text_pair is not None:
            pairs = list(text_pair) if isinstance(text_pair, (list, tuple)) else [text_pair]
            if len(pairs) != len(texts):
                raise ValueError(f"{len(pairs)} text_pair entries for {len(texts)} texts")
        for t in texts + (pairs or []):
            if not isinstance(t, str):
                raise TypeError(f"the tokenizer takes strings, not {type(t).__name__}")
        limit = None
        if truncation not in (None, False, "do_not_truncate") or max_length is not None:
            limit = max_length or self.model_max_length
        encs = _call("tokenize", model=self.name_or_path, text=texts, text_pair=pairs,
                     max_length=limit, add_special_tokens=bool(add_special_tokens))["encodings"]
        ids = [e["input_ids"] for e in encs]
        types = [e["token_type_ids"] for e in encs]
        mask = [[1] * len(r) for r in ids]
        offs = [[tuple(o) for o in e["offsets"]] for e in encs]
        target = None
        if padding is True or padding == "longest":
            target = max(len(r) for r in ids)
        elif padding == "max_length":
            target = max_length or self.model_max_length
        elif padding not in (False, None, "do_not_pad"):
            raise ValueError(f"padding: unknown value {padding!r}")
        if target is not None:
            pad = self.pad_token_id if self.pad_token_id is not None else 0
            for i in range(len(ids)):
                n = target - len(ids[i])
                if n > 0:
                    ids[i] = ids[i] + [pad] * n
                    types[i] = types[i] + [0] * n
                    mask[i] = mask[i] + [0] * n
                    offs[i] = offs[i] + [(0, 0)] * n
        out = BatchEncoding()
        out["input_ids"] = ids
        if return_token_type_ids is not False:
            out["token_type_ids"] = types
        if return_attention_mask is not False:
            out["attention_mask"] = mask
        if return_offsets_mapping:
            out["offset_mapping"] = offs
        out._tokens = [e["tokens"] for e in encs]
        if return_tensors is None:
            if not batched:
                for k in list(out):
                    out[k] = out[k][0]
            return out
        if return_tensors not in ("pt", "np"):
            _unsupported(f"return_tensors='{return_tensors}'")
        if len({len(r) for r in ids}) > 1:
            raise ValueError("Unable to create tensor: the texts have different lengths; "
                             "use padding=True")
        for k in list(out):
            a = _np.asarray(out[k], dtype=_np.int64)
            out[k] = _torch.Tensor(a) if return_tensors == "pt" else a
        return out

    def encode(self, text, text_pair=None, add_special_tokens=True, **kwargs):
        return self(text, text_pair=text_pair, add_special_tokens=add_special_tokens,
                    **kwargs)["input_ids"]

    def tokenize(self, text, **kwargs):
        enc = _call("tokenize", model=self.name_or_path, text=[text], text_pair=None,
                    max_length=None, add_special_tokens=False)["encodings"][0]
        return enc["tokens"]

    def _id_rows(self, ids):
        if isinstance(ids, _torch.Tensor):
            ids = ids.tolist()
        elif isinstance(ids, _np.ndarray):
            ids = ids.tolist()
        if isinstance(ids, int):
            return [[ids]], False
        if ids and isinstance(ids[0], (list, tuple)):
            return [list(r) for r in ids], True
        return [list(ids)], False

    def decode(self, ids, skip_special_tokens=False, **kwargs):
        rows, _ = self._id_rows(ids)
        if len(rows) != 1:
            raise ValueError("decode takes one sequence; use batch_decode for several")
        return _call("decode", model=self.name_or_path, ids=rows,
                     skip_special_tokens=bool(skip_special_tokens))["texts"][0]

    def batch_decode(self, sequences, skip_special_tokens=False, **kwargs):
        rows, _ = self._id_rows(sequences)
        return _call("decode", model=self.name_or_path, ids=rows,
                     skip_special_tokens=bool(skip_special_tokens))["texts"]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        single = isinstance(ids, int) or (isinstance(ids, _torch.Tensor) and ids.ndim == 0)
        rows, _ = self._id_rows(int(ids) if single else ids)
        toks = _call("ids_to_tokens", model=self.name_or_path, ids=rows[0],
                     skip_special_tokens=bool(skip_special_tokens))["tokens"]
        return toks[0] if single else toks

    def convert_tokens_to_ids(self, tokens):
        single = isinstance(tokens, str)
        ids = _call("tokens_to_ids", model=self.name_or_path,
                    tokens=[tokens] if single else list(tokens))["ids"]
        return ids[0] if single else ids

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _unsupported(f"tokenizer.{name}")


class AutoTokenizer(PreTrainedTokenizer):
    pass


BertTokenizer = BertTokenizerFast = DistilBertTokenizer = DistilBertTokenizerFast = AutoTokenizer
PreTrainedTokenizerFast = AutoTokenizer


class PretrainedConfig:
    def __init__(self, info):
        cfg = info.get("config") or {}
        for k, v in cfg.items():
            if isinstance(k, str) and k.isidentifier():
                setattr(self, k, v)
        labels = info.get("id2label") or {}
        self.id2label = {int(k): v for k, v in labels.items()}
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.num_labels = len(self.id2label)
        self.model_type = info.get("model_type")
        self.hidden_size = info.get("hidden_size")
        self.vocab_size = info.get("vocab_size")

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items()}

    def __repr__(self):
        return f"PretrainedConfig({self.to_dict()})"


class ModelOutput(dict):
    """Attributes and keys; outputs[0] is the first field, as in transformers."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, k):
        if isinstance(k, int):
            return list(self.values())[k]
        return dict.__getitem__(self, k)

    def to_tuple(self):
        return tuple(self.values())


class PreTrainedModel:
    _heads = None  # None: any head; otherwise the head kinds this class needs
    _outputs = ("last_hidden_state", "pooler_output")
    _what = "a model"

    def __init__(self, name, info):
        self.name_or_path = name
        self._info = info
        self.config = PretrainedConfig(info)
        self.training = False
        self.device = "cpu"

    @classmethod
    def from_pretrained(cls, name, *args, **kwargs):
        info = _info(name)
        head = info.get("head")
        if cls._heads is not None and head not in cls._heads:
            raise ValueError(f"model '{name}' has no {cls._what} head (its head: {head})")
        return cls(name, info)

    def __repr__(self):
        return f"{type(self).__name__}(name_or_path='{self.name_or_path}')"

    def eval(self):
        return self

    def train(self, mode=True):
        if mode:
            _unsupported("model.train (custom tasks only run inference)")
        return self

    def to(self, *args, **kwargs):
        return self

    def cpu(self):
        return self

    def forward(self, *args, **kwargs):
        return self(*args, **kwargs)

    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None,
                 return_dict=True, **kwargs):
        for k in kwargs:
            if k not in ("output_hidden_states", "output_attentions", "labels") or kwargs[k]:
                _unsupported(f"model argument '{k}'")
        if input_ids is None:
            raise ValueError("the model needs input_ids")
        ids = _as_rows(input_ids)
        mask = _as_rows(attention_mask) if attention_mask is not None else _np.ones_like(ids)
        types = _as_rows(token_type_ids) if token_type_ids is not None else None
        if mask.shape != ids.shape or (types is not None and types.shape != ids.shape):
            raise ValueError("input_ids, attention_mask and token_type_ids differ in shape")
        rows, trows, lens = [], [], []
        for i in range(ids.shape[0]):
            n = int(mask[i].sum())
            if not mask[i][:n].all():
                _unsupported("left padding or holes in attention_mask")
            rows.append([int(x) for x in ids[i][:n]])
            trows.append([int(x) for x in types[i][:n]] if types is not None else None)
            lens.append(n)
        want = [w for w in self._outputs]
        res = _call("forward", model=self.name_or_path, input_ids=rows,
                    token_type_ids=trows if types is not None else None, want=want)
        out = ModelOutput()
        B, L = ids.shape
        for key in want:
            v = res.get(key)
            if v is None:
                continue
            if key in ("logits",) and self._info.get("head") == "seq_cls" or key == "pooler_output":
                out[key] = _torch.Tensor(_np.asarray(v, dtype=_np.float32).reshape(B, -1))
                continue
            # per-token outputs: pad back to the input's length
            first = _np.asarray(v[0], dtype=_np.float32)
            full = _np.zeros((B, L) + first.shape[1:], dtype=_np.float32)
            for i, seq in enumerate(v):
                a = _np.asarray(seq, dtype=_np.float32)
                full[i, :lens[i]] = a
            out[key] = _torch.Tensor(full)
        return out

    def generate(self, *args, **kwargs):
        _unsupported(f"{type(self).__name__}.generate (only BART sequence-to-sequence models)")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _unsupported(f"model.{name}")


class AutoModel(PreTrainedModel):
    _outputs = ("last_hidden_state", "pooler_output")


class AutoModelForSequenceClassification(PreTrainedModel):
    _heads = ("seq_cls",)
    _outputs = ("logits",)
    _what = "sequence-classification"


class AutoModelForTokenClassification(PreTrainedModel):
    _heads = ("token_cls",)
    _outputs = ("logits",)
    _what = "token-classification"


class AutoModelForQuestionAnswering(PreTrainedModel):
    _heads = ("qa",)
    _outputs = ("start_logits", "end_logits")
    _what = "question-answering"


class AutoModelForMaskedLM(PreTrainedModel):
    _heads = ("mlm",)
    _outputs = ("logits",)
    _what = "masked-language-model"


class AutoModelForSeq2SeqLM(PreTrainedModel):
    _heads = ("seq2seq",)
    _outputs = ("last_hidden_state",)
    _what = "sequence-to-sequence"

    def generate(self, input_ids=None, attention_mask=None, max_length=None, min_length=None,
                 num_beams=None, no_repeat_ngram_size=None, length_penalty=None,
                 early_stopping=None, max_new_tokens=None, **kwargs):
        for k in kwargs:
            _unsupported(f"generate argument '{k}'")
        ids = _as_rows(input_ids)
        mask = _as_rows(attention_mask) if attention_mask is not None else _np.ones_like(ids)
        rows = [[int(x) for x in ids[i][: int(mask[i].sum())]] for i in range(ids.shape[0])]
        opts = {k: v for k, v in dict(max_length=max_length, min_length=min_length,
                                      num_beams=num_beams, no_repeat_ngram_size=no_repeat_ngram_size,
                                      length_penalty=length_penalty, early_stopping=early_stopping,
                                      max_new_tokens=max_new_tokens).items() if v is not None}
        seqs = _call("generate", model=self.name_or_path, input_ids=rows, options=opts)["ids"]
        pad = (self._info.get("special_tokens") or {}).get("pad", {}).get("id") or 0
        L = max(len(s) for s in seqs)
        return _torch.Tensor(_np.asarray([s + [pad] * (L - len(s)) for s in seqs],
                                         dtype=_np.int64))


BertModel = DistilBertModel = AutoModel
BertForSequenceClassification = DistilBertForSequenceClassification = \
    AutoModelForSequenceClassification
BertForTokenClassification = AutoModelForTokenClassification
BertForQuestionAnswering = AutoModelForQuestionAnswering
BertForMaskedLM = AutoModelForMaskedLM
BartForConditionalGeneration = AutoModelForSeq2SeqLM

_TASKS = {
    "sentiment-analysis": "classification",
    "text-classification": "classification",
    "ner": "ner",
    "token-classification": "ner",
    "question-answering": "qa",
    "fill-mask": "fill-mask",
    "feature-extraction": "features",
    "summarization": "summarization",
}


class Pipeline:
    def __init__(self, task, engine_task, model, kwargs):
        self.task = task
        self._engine_task = engine_task
        self.model = model
        self._kwargs = kwargs

    def __call__(self, *args, **kwargs):
        opts = dict(self._kwargs)
        opts.update(kwargs)
        t = self._engine_task
        body = {"model_name": self.model}
        if t == "qa":
            q = opts.pop("question", args[0] if args else None)
            c = opts.pop("context", args[1] if len(args) > 1 else None)
            body.update(question=q, context=c)
            body.update(opts)
            data = _call("pipeline", task=t, body=body)
            r = data["results"]
            if isinstance(q, str) and "top_k" not in opts:
                return r[0] if r else None
            return r
        if not args:
            text = opts.pop("inputs", opts.pop("text", None))
        else:
            text = args[0]
        single = isinstance(text, str)
        if t == "classification":
            top_k = opts.pop("top_k", "unset")
            if opts.pop("return_all_scores", False):
                top_k = None
            body.update(text=text, top_k=1 if top_k == "unset" else top_k)
            body.update(opts)
            res = _call("pipeline", task=t, body=body)["results"]
            if top_k == "unset":
                res = [r[0] for r in res]
                return res
            return res[0] if single else res
        body.update(text=text)
        body.update(opts)
        data = _call("pipeline", task=t, body=body)
        if t == "features":
            f = data["features"]
            return [f[0]] if single else [[x] for x in f]
        res = data["results"]
        if t == "summarization":
            return res
        return res[0] if single else res


def pipeline(task=None, model=None, tokenizer=None, **kwargs):
    if task not in _TASKS:
        _unsupported(f"pipeline task '{task}' (supported: {', '.join(sorted(_TASKS))})")
    if model is None:
        model = globals().get("_default_model")
    if not isinstance(model, str):
        if isinstance(model, PreTrainedModel):
            model = model.name_or_path
        else:
            raise ValueError("pipeline() needs model='<name of a model in the cache>'")
    for k in ("device", "framework", "use_fast"):
        kwargs.pop(k, None)
    _info(model)
    return Pipeline(task, _TASKS[task], model, kwargs)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    _unsupported(f"transformers.{name}")
