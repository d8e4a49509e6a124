#!/usr/bin/env python3
"""Checks that every repository path the documentation names exists: the targets of markdown
links and the `code spans` that look like paths (a slash or a file extension), in README.md,
README.ko.md, docs/*.md and bench/README.md. Globs (configs/gpt2-*.json) must match something;
a path may be written from inside llmkit/ (kernels/cpu/gemm.cpp); a bare file name counts only
for markdown files (DESIGN.md) and link targets, since `config.json` usually names a run's file. Paths that runs create (runs/, build/,
bench/out/, the GPT-2 fixture, the venvs) are skipped. Prints each missing path; exit 1 if any.
Usage: scripts/check-doc-paths.py"""
import glob
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
docs = ["README.md", "README.ko.md", "bench/README.md"] + sorted(glob.glob("docs/*.md"))
# Paths a run makes (a run directory's checkpoints/ included), not files of the repository.
generated = ("runs/", "build/", "build-asan/", "build-fuzz/", "bench/out/", "tests/fixtures/gpt2",
             ".venv", "/tmp/", "/usr/", "/proc/", "$", "checkpoints/")
exts = (".md", ".h", ".cpp", ".json", ".sh", ".py", ".txt", ".svg", ".tsv", ".csv", ".safetensors")
tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
names = {os.path.basename(p) for p in tracked}
missing = 0
for doc in docs:
    text = open(doc, encoding="utf-8").read()
    text_no_blocks = re.sub(r"```.*?```", "", text, flags=re.S)
    cands = [(m, True) for m in re.findall(r"\]\(([^)#\s]+)", text)]
    cands += [(m, False) for m in re.findall(r"`([^`\s]+)`", text_no_blocks)]
    for cand, is_link in cands:
        if (re.match(r"^[a-z]+:", cand) or cand.startswith(generated) or cand.startswith("-")
                or "*" in cand):  # a glob names a family of files, checked by hand
            continue
        if not is_link and "/" not in cand and not cand.endswith(exts):
            continue
        if not re.match(r"^[\w./*+-]+$", cand) or cand.count("/") == 0 and "*" in cand:
            continue
        here = os.path.normpath(os.path.join(os.path.dirname(doc), cand)) if is_link else cand
        ok = bool(glob.glob(here)) or bool(glob.glob(cand.rstrip("/")))
        if not ok and "/" not in cand:
            ok = cand in names if (is_link or cand.endswith(".md")) else True
        if not ok and "/" in cand:
            ok = any(p.endswith("/" + cand) for p in tracked)
        if not ok and not is_link and not cand.endswith(exts) and "/" in cand:
            # A code span with a slash but no extension may be an option value or a ratio (a/b):
            # only count it when its first part is a top-level entry of the repository.
            ok = not os.path.exists(cand.split("/")[0])
        if not ok:
            print(f"{doc}: {cand}")
            missing += 1
print(f"check-doc-paths: {len(docs)} documents, {missing} missing path(s)")
sys.exit(1 if missing else 0)
