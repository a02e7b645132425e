#!/usr/bin/python3
"""One command for the serving figures of issues 13 and 16, in one sitting,
written as Markdown tables (and printed):

  issue 13  mixed.py with two binaries, the commit before issue 13's work
            (0517b4b, built in its own git worktree by build-before.sh) and
            the current build, alternating: the mixed-route load and the
            three-model load (sequences/s, p50/p99 at each client count, the
            process's threads); lines in src/server and src/batch at both.
  issue 16  compare.py against transformers.js 4.3.1 with our AVX2 path
            forced (BS_CPU=avx2), f32 then --precision int8; with
            --hide-avx512, AVX-512 hidden from both servers instead
            (bench/hide-avx512.sh), so that both run their AVX2 paths.

Missing pieces are made first: the models (make-models.sh, ~3 GB under
bench/out/serve), the peer's npm packages and wrk (deps.sh), the before
binary (build-before.sh). Each table names its command, the CPU's flags and
the load average at its start and end. A step that fails is reported in its
section and the others still run.

usage: /usr/bin/python3 bench/serve/figures.py [--after build/bertstudio]
       [--before BIN | --before-commit 0517b4b --before-dir DIR]
       [--duration 10] [--rounds 1] [--concurrency 1,8,64] [--cpu avx2 | --hide-avx512]
       [--only issue13,issue16] [--out bench/out/serve-figures.md]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
# the branches issue-13 (merged at 05bfa25) and issue-13b (merged at 7941115)
ISSUE13_RANGES = ("0517b4b..05bfa25^2", "38688e9..7941115^2")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def cpu_line():
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} cores"


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True).stdout.strip()


def run_step(cmd, log):
    """Runs one benchmark command; returns (ok, its last output lines)."""
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    lines = []
    with open(log, "w") as f, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                               text=True) as p:
        for ln in p.stdout:  # shown as it comes: a run takes minutes
            f.write(ln)
            sys.stderr.write(ln)
            sys.stderr.flush()
            lines.append(ln.rstrip())
    return p.returncode == 0, "\n".join(lines[-6:])


def ms(p50, p99):
    return f"{p50:.0f} / {p99:.0f}"


def section_head(title, cmd, t0, l0, l1):
    return [f"### {title}", "", f"`{shlex.join(cmd)}`", "",
            f"Started {t0}; load average {l0} at the start, {l1} at the end.", ""]


def mixed_tables(res, names):
    out = []
    titles = {"mixed": "Mixed routes (classification, rerank, embeddings, /v1/embeddings to demo/cls; "
                       "NER to demo/ner; QA with a long context, 4 windows, to demo/qa)",
              "three": "Three models served at once (classification, NER, QA cycling over demo/cls, "
                       "demo/ner, demo/qa)"}
    for ld, d in res["loads"].items():
        out += [f"**{titles[ld]}**; sequences per request: "
                + (f"{d['sequences_per_request']:.2f}" if d["sequences_per_request"] else "not counted"), ""]
        head = "| clients |" + "".join(f" {n} req/s | {n} seq/s | {n} p50 / p99 ms |" for n in names)
        out += [head + " seq/s after / before |" if len(names) == 2 else head,
                "| ---: |" + " ---: | ---: | ---: |" * len(names) + (" ---: |" if len(names) == 2 else "")]
        levels = sorted({r["clients"] for r in d["rows"]})
        for c in levels:
            rows = [next(r for r in d["rows"] if r["bin"] == i and r["clients"] == c) for i in range(len(names))]
            line = f"| {c} |" + "".join(
                f" {r['req_s']:.2f} | {r['seq_s']:.2f} | {ms(r['p50_ms'], r['p99_ms'])} |" if r["seq_s"] is not None
                else f" {r['req_s']:.2f} | - | {ms(r['p50_ms'], r['p99_ms'])} |" for r in rows)
            if len(names) == 2:
                line += f" {rows[1]['req_s'] / rows[0]['req_s']:.2f} |" if rows[0]["req_s"] else " - |"
            out.append(line)
        secs = {r["clients"]: r["seconds"] for r in d["rows"]}
        out += ["", "Measured seconds per level: " + ", ".join(f"{c} clients {s:.0f} s" for c, s in secs.items())
                + ". Requests per forward pass (the batcher's counters): " + "; ".join(
            f"{names[r['bin']]} c={r['clients']}: {r['req_per_forward']:.2f}" for r in d["rows"]) + "."]
        out += ["Most threads seen right after a level: " + ", ".join(
            f"{n} {t}" for n, t in zip(names, d["peak_threads"])) + ".", ""]
    out += [f"**Threads** (/proc/PID/task, {res['cores']} cores):", ""]
    out += ["| binary | no model loaded | three loaded, idle | named bs-compute |", "| --- | ---: | ---: | ---: |"]
    for n, t in zip(names, res["threads"]):
        out.append(f"| {n} | {t['no_model']} | {t['three_loaded']} | {t['bs_compute']} |")
    out.append("")
    return out


def lines_table(before, after):
    out = ["**Lines in src/server and src/batch** (`git grep -c ''`, .c and .h; the after commit holds "
           "other issues' work too):", "", "| folder | before | after | change |", "| --- | ---: | ---: | ---: |"]
    for d in ("src/server", "src/batch"):
        n = []
        for c in (before, after):
            txt = git("grep", "-c", "", c, "--", f"{d}/*.c", f"{d}/*.h")
            n.append(sum(int(ln.rsplit(":", 1)[1]) for ln in txt.splitlines() if ln))
        out.append(f"| {d} | {n[0]} | {n[1]} | {n[1] - n[0]:+d} |")
    st = git("diff", "--shortstat", before, after, "--", "src/server", "src/batch")
    out += ["", f"`git diff --shortstat {before} {after} -- src/server src/batch`: {st}", ""]
    # issue 13's own commits: the first-parent line of its two branches
    add = rem = 0
    for r in ISSUE13_RANGES:
        for ln in git("log", "--first-parent", "--no-merges", "--numstat", "--format=", r, "--",
                      "src/server", "src/batch").splitlines():
            f = ln.split("\t")
            if len(f) == 3 and f[0].isdigit():
                add, rem = add + int(f[0]), rem + int(f[1])
    out += [f"Issue 13's own commits (`git log --first-parent --no-merges --numstat` over "
            f"{', '.join(ISSUE13_RANGES)}) in src/server and src/batch: {add} lines added, {rem} removed.", ""]
    return out


def compare_table(res, target, need, lower_p99):
    out = ["| clients | seconds | ours seq/s | peer seq/s | ratio | ours p50 / p99 ms | peer p50 / p99 ms | "
           "requests per forward (ours / peer) | target " + target + " |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for lv in res["levels"]:
        o, p = lv["ours"], lv["peer"]
        ratio = o["seq_s"] / p["seq_s"] if p["seq_s"] else float("inf")
        ok = ratio >= need and (not lower_p99 or o["p99_ms"] < p["p99_ms"])
        out.append(f"| {lv['clients']} | {lv['seconds']:.0f} | {o['seq_s']:.1f} | {p['seq_s']:.1f} | {ratio:.2f} | "
                   f"{ms(o['p50_ms'], o['p99_ms'])} | {ms(p['p50_ms'], p['p99_ms'])} | "
                   f"{o['req_per_batch']:.1f} / {p['req_per_batch']:.1f} | {'met' if ok else 'not met'} |")
    out += ["", f"Our kernels: {res['kernels']}; cosine(ours, peer) on one sentence: {res['cosine']:.6f}.", ""]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--after", default=os.path.join(ROOT, "build", "bertstudio"))
    ap.add_argument("--before", help="the before binary (default: built from --before-commit)")
    ap.add_argument("--before-commit", default="0517b4b", help="the commit before issue 13's work")
    ap.add_argument("--before-dir", help="its worktree (default: ../bertstudio-before-COMMIT next to the repo)")
    ap.add_argument("--models", default=os.path.join(ROOT, "bench", "out", "serve"))
    ap.add_argument("--tjs", default=HERE)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--max-duration", type=float, default=60, help="longest a level may run")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--cpu", default="avx2", help="BS_CPU for issue 16's runs")
    ap.add_argument("--hide-avx512", action="store_true",
                    help="issue 16's runs with AVX-512 hidden from both servers (instead of --cpu)")
    ap.add_argument("--only", default="issue13,issue16")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "serve-figures.md"))
    a = ap.parse_args()
    only = a.only.split(",")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    work = tempfile.mkdtemp(prefix="bs-serve-figures-")

    subprocess.run(["sh", os.path.join(HERE, "make-models.sh"), a.models], check=True, stdout=subprocess.DEVNULL)
    if "issue16" in only and a.tjs == HERE:
        subprocess.run(["sh", os.path.join(HERE, "deps.sh")], check=True, stdout=subprocess.DEVNULL)
    elif subprocess.run(["sh", "-c", "command -v wrk"], stdout=subprocess.DEVNULL).returncode:
        raise SystemExit("wrk is missing: bench/serve/deps.sh installs it")
    head = git("rev-parse", "--short", "HEAD")
    if "issue13" in only and not a.before:
        d = a.before_dir or os.path.join(os.path.dirname(ROOT), "bertstudio-before-" + a.before_commit)
        a.before = subprocess.run(["sh", os.path.join(HERE, "build-before.sh"), a.before_commit, d],
                                  check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip()

    start, load0 = now(), loadavg()
    md = ["# Serving figures (issues 13 and 16)", "",
          f"- Machine: {cpu_line()} ({platform.node()}).",
          "- CPU flags (`grep -o 'avx[^ ]*\\|fma\\|f16c' /proc/cpuinfo | sort -u | tr '\\n' ' '`): "
          + " ".join(sorted(set(re.findall(r"\b(avx\S*|fma|f16c)\b", open("/proc/cpuinfo").read())))),
          f"- Tree: {head} ({git('log', '-1', '--format=%s', 'HEAD')[:100]}).",
          f"- Durations: {a.duration:g} s per point (up to {a.max_duration:g} s where many clients need longer; "
          f"the tables say), after 2 s of warm-up and a wait until the server is idle; {a.rounds} round(s); "
          "load generator wrk (one keep-alive connection per client).",
          "- The machine is shared: other engineers' builds and tests run at the same time, so compare "
          "figures within this file only.", ""]

    if "issue13" in only:
        names = ["before", "after"]
        js = os.path.join(work, "mixed.json")
        cmd = [PY, os.path.join(HERE, "mixed.py"), "--bin", a.before, "--bin", a.after, "--models", a.models,
               "--duration", str(a.duration), "--max-duration", str(a.max_duration), "--rounds", str(a.rounds),
               "--concurrency", a.concurrency, "--json", js]
        t0, l0 = now(), loadavg()
        ok, tail = run_step(cmd, os.path.join(work, "mixed.log"))
        md += ["## Issue 13: before and after, same sitting", "",
               f"before = {a.before} ({a.before_commit}: {git('log', '-1', '--format=%s', a.before_commit)[:80]}); "
               f"after = {a.after} ({head}).", ""]
        md += section_head("Mixed-route and three-model loads (our server only)", cmd, t0, l0, loadavg())
        if os.path.exists(js):
            md += mixed_tables(json.load(open(js)), names)
        if not ok:
            md += ["**This step failed**; its last lines:", "", "```", tail, "```", ""]
        md += lines_table(a.before_commit, "HEAD")

    if "issue16" in only:
        if a.hide_avx512:
            md += ["## Issue 16: against transformers.js 4.3.1, AVX-512 hidden from both servers", "",
                   "Both servers ran under bench/hide-avx512.sh, which hides AVX-512 from cpuid, so each "
                   "chose its AVX2 path by itself, as on an AVX2-only CPU.", ""]
            how = ["--hide-avx512"]
        else:
            md += [f"## Issue 16: against transformers.js 4.3.1, our path forced with BS_CPU={a.cpu}", "",
                   "The peer's ONNX Runtime chooses its kernels from the CPU's flags (no switch forces a lower "
                   "path), so on an AVX-512 CPU it runs its AVX-512 kernels while ours runs the forced path "
                   "(--hide-avx512 runs both on their AVX2 paths).", ""]
            how = ["--cpu", a.cpu]
        for prec, target, need, lower_p99 in (("f32", "≥ 1.1× and lower p99", 1.1, True),
                                              ("int8", "≥ 2×", 2.0, False)):
            js = os.path.join(work, f"compare-{prec}.json")
            cmd = [PY, os.path.join(HERE, "compare.py"), "--bin", a.after, "--model-dir",
                   os.path.join(a.models, "emb"), "--tjs", a.tjs, "--duration", str(a.duration),
                   "--max-duration", str(a.max_duration), "--rounds", str(a.rounds), "--concurrency", a.concurrency, *how, "--precision", prec,
                   "--json", js]
            t0, l0 = now(), loadavg()
            ok, tail = run_step(cmd, os.path.join(work, f"compare-{prec}.log"))
            md += section_head(f"{prec}: POST /tasks/embeddings, one sentence per request", cmd, t0, l0, loadavg())
            if os.path.exists(js):
                md += compare_table(json.load(open(js)), target, need, lower_p99)
            if not ok:
                md += ["**This step failed**; its last lines:", "", "```", tail, "```", ""]

    md += [f"Whole run: {start} to {now()}; load average {load0} at the start, {loadavg()} at the end.", ""]
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"written to {a.out}; logs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
