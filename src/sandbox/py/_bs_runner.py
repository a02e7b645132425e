"""Runs one custom task inside the jailed child (mode "run"), or compiles
it and reports what it finds (mode "check"). Imported by the warm worker
before any fork, together with every module user code may import, so that
a child never needs to read a file. main() returns the result frame."""

import ast
import bisect  # noqa: F401  (pre-imported for user code)
import builtins
import collections  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import json
import math  # noqa: F401
import operator  # noqa: F401
import os  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import socket  # noqa: F401  (importable; the kernel refuses every socket)
import statistics  # noqa: F401
import string  # noqa: F401
import sys
import time  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401
import encodings.idna  # noqa: F401  (socket names)

import numpy

import torch
import torch.nn.functional  # noqa: F401
import transformers

PARTS = ("tokenizer_code", "model_code", "function_code")

# What `import` may load in user code. os and socket are importable: their
# dangerous calls are refused by the kernel's filter, which names them.
ALLOWED = {
    "torch", "torch.nn", "torch.nn.functional", "transformers", "numpy", "math", "json", "re",
    "collections", "itertools", "functools", "string", "statistics", "random", "typing",
    "dataclasses", "operator", "heapq", "bisect", "copy", "unicodedata", "decimal", "fractions",
    "enum", "datetime", "time", "os", "socket",
}

_real_import = builtins.__import__


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0:
        raise ImportError("relative imports are not available in custom tasks")
    top = name.split(".")[0]
    if name not in ALLOWED and not (top == "numpy" and name in sys.modules):
        raise ImportError(f"module '{name}' is not available in BERT Studio custom tasks "
                          f"(allowed: {', '.join(sorted(ALLOWED))})")
    return _real_import(name, globals, locals, fromlist, level)


class SandboxRefusal(PermissionError):
    """What the jail refuses, said before the kernel has to."""


def _refuse_spawn(name):
    def refused(*args, **kwargs):
        raise SandboxRefusal(f"custom task tried to start a process (os.{name} is not allowed)")
    return refused


# glibc's system() and posix_spawn() block every signal before they clone,
# so the kernel's refusal could only kill the child without naming the call:
# say it here (the filter still holds for any way around this).
for _name in ("system", "popen", "posix_spawn", "posix_spawnp", "spawnv", "spawnve", "spawnl",
              "spawnle", "spawnlp", "spawnvp", "spawnvpe", "spawnlpe"):
    if hasattr(os, _name):
        setattr(os, _name, _refuse_spawn(_name))


def _refused_open(file, *args, **kwargs):
    raise PermissionError(f"custom tasks may not open files ({file!r})")


def _safe_builtins():
    b = dict(builtins.__dict__)
    b["__import__"] = _guarded_import
    b["open"] = _refused_open
    for k in ("exit", "quit", "input", "breakpoint", "help", "copyright", "credits", "license"):
        b.pop(k, None)
    return b


def _user_line(tb):
    """(part, line) of the innermost frame of the user's code."""
    where = None
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn.startswith("<") and fn.strip("<>") in PARTS:
            where = (fn.strip("<>"), tb.tb_lineno)
        tb = tb.tb_next
    return where


class _Refusal(Exception):
    pass


def _message(e, memory_mb):
    """(kind, sentence) for an exception of the user's code."""
    if isinstance(e, SandboxRefusal):
        return "refused", str(e)
    if isinstance(e, MemoryError):
        return "limit", f"custom task exceeded its memory limit ({memory_mb} MB)"
    if isinstance(e, RecursionError):
        return "limit", f"custom task exceeded the maximum recursion depth ({e})"
    if isinstance(e, SyntaxError):
        part = (e.filename or "").strip("<>")
        return "error", f"syntax error in {part} line {e.lineno}: {e.msg}"
    where = _user_line(e.__traceback__)
    at = f" ({where[0]} line {where[1]})" if where else ""
    if isinstance(e, PermissionError):
        return "error", f"custom task may not open files or devices: {e}{at}"
    return "error", f"Custom task execution failed: {type(e).__name__}: {e}{at}"


def _to_json(v):
    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, numpy.ndarray):
        return v.tolist()
    if isinstance(v, numpy.generic):
        return v.item()
    if isinstance(v, (set, frozenset)):
        raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")
    if isinstance(v, transformers.ModelOutput) or isinstance(v, transformers.BatchEncoding):
        return dict(v)
    raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")


def _run(job):
    g = {
        "__builtins__": _safe_builtins(),
        "__name__": "__custom_task__",
        "torch": torch,
        "transformers": transformers,
        "AutoTokenizer": transformers.AutoTokenizer,
        "AutoModel": transformers.AutoModel,
        "AutoModelForSequenceClassification": transformers.AutoModelForSequenceClassification,
        "AutoModelForTokenClassification": transformers.AutoModelForTokenClassification,
        "AutoModelForQuestionAnswering": transformers.AutoModelForQuestionAnswering,
        "AutoModelForMaskedLM": transformers.AutoModelForMaskedLM,
        "AutoModelForSeq2SeqLM": transformers.AutoModelForSeq2SeqLM,
        "pipeline": transformers.pipeline,
        "model_id": job.get("model_id") or None,
    }
    transformers._default_model = job.get("model_id") or None
    for part, var in (("tokenizer_code", "tokenizer"), ("model_code", "model")):
        src = job.get(part) or ""
        exec(compile(src, f"<{part}>", "exec"), g)
        # The original product insists on both variables; our API only when
        # the part was given.
        if var not in g and (job.get("strict") or src.strip()):
            raise _Refusal(f"{part.split('_')[0].capitalize()} code must assign to variable "
                           f"'{var}'")
    exec(compile(job.get("function_code") or "", "<function_code>", "exec"), g)
    fn = g.get("custom_function")
    if not callable(fn):
        raise _Refusal("Function code must define a function named 'custom_function'")
    inp = job.get("input")
    result = fn(list(inp) if job.get("batch") else inp)
    if job.get("batch"):
        if isinstance(result, (torch.Tensor, numpy.ndarray, tuple)):
            result = list(result)
        if not isinstance(result, list):
            raise _Refusal("custom_function must return a list of results, one per input text")
        if len(result) != len(inp):
            raise _Refusal(f"custom_function returned {len(result)} results for {len(inp)} "
                           "input texts")
    return result


def _check(job):
    errors, models, defines = [], [], False
    uses_model_id = False
    for part in PARTS:
        src = job.get(part) or ""
        try:
            tree = ast.parse(src, filename=f"<{part}>")
        except SyntaxError as e:
            errors.append({"part": part, "line": e.lineno, "message": e.msg})
            continue
        except ValueError as e:  # NUL bytes
            errors.append({"part": part, "line": None, "message": str(e)})
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr == "from_pretrained" and node.args:
                    a = node.args[0]
                    if isinstance(a, ast.Constant) and isinstance(a.value, str):
                        models.append(a.value)
                if isinstance(f, ast.Name) and f.id == "pipeline":
                    for kw in node.keywords:
                        if kw.arg == "model" and isinstance(kw.value, ast.Constant) and \
                                isinstance(kw.value.value, str):
                            models.append(kw.value.value)
            if isinstance(node, ast.Name) and node.id == "model_id":
                uses_model_id = True
        if part == "function_code":
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name == "custom_function":
                    defines = True
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "custom_function" for t in node.targets):
                    defines = True
    if not defines and not any(e["part"] == "function_code" for e in errors):
        errors.append({"part": "function_code", "line": None,
                       "message": "function_code must define custom_function"})
    seen = []
    for m in models:
        if m not in seen:
            seen.append(m)
    return {"valid": not errors, "errors": errors, "defines_custom_function": defines,
            "models": seen, "uses_model_id": uses_model_id}


def _frame(ok, **kw):
    kw["op"] = "result"
    kw["ok"] = ok
    return json.dumps(kw, allow_nan=False)


def main(text):
    job = json.loads(text)
    memory_mb = job.get("memory_mb", 0)
    if job.get("mode") == "check":
        return _frame(True, result=_check(job))
    try:
        result = _run(job)
    except _Refusal as e:
        return _frame(False, kind="error", error=str(e))
    except BaseException as e:  # noqa: B902 (SystemExit too: the task may not end the child)
        kind, msg = _message(e, memory_mb)
        return _frame(False, kind=kind, error=msg)
    try:
        body = json.dumps(result, default=_to_json, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        return _frame(False, kind="error",
                      error=f"custom_function returned a value that is not JSON-serialisable: {e}")
    except MemoryError:
        return _frame(False, kind="limit",
                      error=f"custom task exceeded its memory limit ({memory_mb} MB)")
    limit = job.get("max_output") or 0
    if limit and len(body) > limit:
        return _frame(False, kind="limit",
                      error=f"custom task output exceeded the {limit} byte limit "
                            f"(custom_task_max_output_bytes): it is {len(body)} bytes")
    return '{"op":"result","ok":true,"result":' + body + "}"


# numpy has read its thread settings: nothing of the environment is left for
# user code (the server starts the worker with an empty one).
os.environ.clear()
