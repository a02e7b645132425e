#!/usr/bin/env python3
"""The engine on a CPU this machine is not: the binaries run under qemu-user's
emulation of an older x86 CPU with no BS_CPU set, so the automatic dispatch has
to find the right path by itself, and any instruction the emulated CPU lacks
(an AVX-512 one that auto-vectorisation or a wrong target attribute let into
the avx2 path, say) traps with SIGILL. qemu's TCG implements no AVX-512 at all.

  qemu_cpu.py avx2 --bin BERTSTUDIO --tensor-test TEST_TENSOR --fixtures DIR
      Haswell (AVX2, FMA3, F16C; no AVX-512): the load log names the avx2
      path, BS_CPU=avx512 is refused, test_tensor passes, and fixture requests
      through `bertstudio run` (f32, fp16, int8) give what the same binary gives
      natively with BS_CPU=avx2.
  qemu_cpu.py portable --tensor-test TEST_TENSOR
      Nehalem (SSE4.2; no AVX): test_tensor of a build for the plain x86-64
      baseline (-DBS_ARCH_FLAGS=-march=x86-64) passes on the portable path.

Exits 77 (ctest's "skipped"), saying why, when qemu-x86_64 or the CPU model is
missing; scripts/install-deps.sh installs qemu-user."""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77
CPU_MODELS = {"avx2": "Haswell-v4", "portable": "Nehalem-v1"}
# The path each mode's CPU must get, as test_tensor and the load log name it.
PATH_NAMES = {"avx2": "avx2+fma3", "portable": "portable C"}
# qemu warns about the model's system-level features (pcid, x2apic...) that
# user-mode emulation does not need; they are noise in the output checked here.
QEMU_NOISE = re.compile(r"^qemu-x86_64: warning: TCG doesn't support requested feature")

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def run(cmd, env_extra=None, stdin=None, timeout=120):
    """Runs cmd with no BS_CPU in its environment (plus env_extra): returns
    (exit code, stdout, stderr without qemu's feature warnings, seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "BS_CPU"}
    env.update(env_extra or {})
    t0 = time.monotonic()
    # A trapped guest makes qemu dump a core file into the working directory.
    no_core = lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # noqa: E731
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout,
                       preexec_fn=no_core)
    err = "\n".join(ln for ln in p.stderr.splitlines() if not QEMU_NOISE.match(ln))
    if p.returncode < 0:
        sig = signal.Signals(-p.returncode).name
        hint = ": an instruction this CPU does not have" if sig == "SIGILL" else ""
        err += f"\n[killed by {sig}{hint}]"
    return p.returncode, p.stdout, err, time.monotonic() - t0


def max_diff(a, b, path="$"):
    """The largest difference between two JSON values of the same shape
    (strings and keys equal), or raises ValueError naming where they differ."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None:
        if a != b:
            raise ValueError(f"{path}: {a!r} vs {b!r}")
        return 0.0
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max([max_diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))],
                   default=0.0)
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max([max_diff(a[k], b[k], f"{path}.{k}") for k in a], default=0.0)
    raise ValueError(f"{path}: different shapes: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}")


def fixture_requests(fixtures, task_file, model):
    out = []
    with open(os.path.join(fixtures, "pipelines", task_file)) as f:
        for line in f:
            case = json.loads(line)
            if case["model"] == model:
                req = dict(case["request"])
                req.pop("model_name", None)
                out.append(json.dumps(req))
    return "\n".join(out) + "\n"


def mode_avx2(args, qemu):
    models = os.path.join(args.fixtures, "models")
    emb = os.path.join(models, "tiny-bert-embeddings")

    # 1. dispatch: the load log names the avx2 path and why, with no BS_CPU
    rc, out, err, dt = run(qemu + [args.bin, "bench", "--model", emb, "--seq", "16", "--iters", "1",
                                   "--warmup", "0", "--threads", "2", "--precision", "int8"])
    line = next((ln for ln in err.splitlines() if "kernels:" in ln), "no kernels line in the log")
    print(f"     ({dt:.1f} s) {line.split(': ', 2)[-1] if 'kernels:' in line else line}")
    check(rc == 0 and re.search(r"kernels: avx2\+fma3 \(no avx512f", err) is not None,
          "bench under qemu picks avx2+fma3 by itself and says it lacks avx512f" +
          ("" if rc == 0 else f" (exit {rc}: {err.strip()[-300:]})"))
    check(re.search(r"int8 kernel: avx2\b", err) is not None, "its int8 kernel is the avx2 one")

    # 2. BS_CPU=avx512 is refused, naming what the CPU lacks
    rc, out, err, dt = run(qemu + [args.bin, "bench", "--model", emb, "--seq", "8", "--iters", "1",
                                   "--warmup", "0"], env_extra={"BS_CPU": "avx512"})
    m = re.search(r"BS_CPU=avx512: this CPU lacks avx512f[^\n]*", err)
    print(f"     ({dt:.1f} s) {m.group(0) if m else err.strip()[-200:]}")
    check(rc != 0 and m is not None, "BS_CPU=avx512 under qemu is refused, naming avx512f")

    # 3. the kernel tests (packed GEMM f32/f16/bf16-widened, int8, element-wise
    #    tables, attention) on the path the CPU chose
    tensor_test(args, qemu, "avx2")

    # 4. real forwards: fixture requests through `bertstudio run`, under qemu
    #    and natively on the same path (same binary, same threads, so the same
    #    kernels and splits), in each precision the avx2 path runs
    cases = [
        ("embeddings", "embeddings.jsonl", "tiny-bert-embeddings", "f32"),
        ("classification", "classification.jsonl", "tiny-bert-classification", "f32"),
        ("classification", "classification.jsonl", "tiny-bert-classification-f16", "fp16"),
        ("embeddings", "embeddings.jsonl", "tiny-bert-embeddings", "int8"),
    ]
    for task, jsonl, model, precision in cases:
        reqs = fixture_requests(args.fixtures, jsonl, model)
        cmd = [args.bin, "run", task, "--model", os.path.join(models, model), "--batch",
               "--threads", "2", "--precision", precision]
        rq, emu, eq, dt = run(qemu + cmd, stdin=reqs)
        rn, nat, en, _ = run(cmd, stdin=reqs, env_extra={"BS_CPU": "avx2"})
        what = f"{task} {model} {precision}: {reqs.count(chr(10))} requests"
        if rq != 0 or rn != 0:
            check(False, f"{what} (exit {rq} under qemu, {rn} native: {(eq or en).strip()[-300:]})")
            continue
        try:
            a = [json.loads(ln) for ln in emu.splitlines()]
            b = [json.loads(ln) for ln in nat.splitlines()]
            worst = max_diff(a, b)
            # Same kernels, same splits: only the BLAS heads may round apart
            # (OpenBLAS picks its own kernel per CPU).
            check(worst <= 1e-5, f"{what} under qemu ({dt:.1f} s) equal the native avx2 ones: "
                  f"max diff {worst:.2g}")
        except ValueError as e:
            check(False, f"{what}: qemu and native answers differ: {e}")


def tensor_test(args, qemu, mode):
    rc, out, err, dt = run(qemu + [args.tensor_test], timeout=300)
    path = re.search(r"kernel path: ([^\n]*)", out)
    print(f"     ({dt:.1f} s) kernel path: {path.group(1) if path else '?'}")
    for ln in out.splitlines():
        if "GEMM" in ln:
            print("    " + ln.strip())
    ok = rc == 0 and path is not None and path.group(1).startswith(PATH_NAMES[mode] + " (")
    if not ok:
        print(out[-3000:] + err[-2000:])
    check(ok, f"test_tensor under qemu passes on the {PATH_NAMES[mode]} path, chosen by itself")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=sorted(CPU_MODELS))
    ap.add_argument("--bin", help="the bertstudio binary (avx2 mode)")
    ap.add_argument("--tensor-test", required=True, help="the test_tensor binary")
    ap.add_argument("--fixtures", help="tests/fixtures (avx2 mode)")
    args = ap.parse_args()
    if args.mode == "avx2" and not (args.bin and args.fixtures):
        ap.error("avx2 needs --bin and --fixtures")

    if platform.machine() != "x86_64":
        print(f"skipped: emulating an x86-64 CPU needs an x86-64 host, not {platform.machine()}")
        return SKIP
    exe = shutil.which("qemu-x86_64")
    if not exe:
        print("skipped: qemu-x86_64 not found (Debian's qemu-user; scripts/install-deps.sh "
              "installs it)")
        return SKIP
    model = CPU_MODELS[args.mode]
    models = subprocess.run([exe, "-cpu", "help"], capture_output=True, text=True).stdout
    if not re.search(rf"^x86 {re.escape(model)}\b", models, re.M):
        print(f"skipped: {exe} has no CPU model {model}")
        return SKIP
    print(f"qemu: {exe} -cpu {model}", flush=True)
    qemu = [exe, "-cpu", model]
    t0 = time.monotonic()
    if args.mode == "avx2":
        mode_avx2(args, qemu)
    else:
        tensor_test(args, qemu, "portable")
    print(f"{len(failures)} failed, in {time.monotonic() - t0:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
