"""Shared helpers of the JSONL data sets (instruction and preference-experiment data).

Two kinds of set, each a folder of <split>.jsonl files, one JSON object a line, UTF-8:
  chat    {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}, ...],
           "lang": "en"|"ko", "source": ..., "id": ...}: turns alternate user/assistant, start
           with the user and end with the assistant. `id` is the unit of the split: lines that
           share an id (the two languages of one FAQ section, the alternative answers to one
           chatterbot prompt) are always in the same split.
  prompt  {"prompt": ..., "completion": ...} or {"prompt": ...} (the reviews sets)
This module makes the seeded splits (SHA-256 of the set's name and the id, as common.py does for
the TSV sets), writes the files atomically and validates them by reading them back. Standard
library only; not a loader for the training code (C++).
"""

import json
import os
import subprocess

from common import fail, hangul_count, stable_hash

SPLITS_TEST = ("train", "test")
SPLITS_VAL = ("train", "val", "test")
LANGS = ("en", "ko")


def split_ids(name, ids, test=0.1, val=0.0):
    """{id: split}: ids ordered by SHA-256(name, id); the first round(n * test) go to test, the next
    round(n * val) to val, the rest to train. Depends only on the ids, not on their order."""
    order = sorted(set(ids), key=lambda i: stable_hash(name, i))
    n_test, n_val = round(len(order) * test), round(len(order) * val)
    return {i: ("test" if k < n_test else "val" if k < n_test + n_val else "train")
            for k, i in enumerate(order)}


def chat(turns, lang, source, id_):
    """One chat line: turns [user, assistant, user, ...] (stripped)."""
    roles = ("user", "assistant")
    return {"messages": [{"role": roles[k % 2], "content": t.strip()} for k, t in enumerate(turns)],
            "lang": lang, "source": source, "id": id_}


def write_jsonl(path, rows):
    """Written atomically (path.part, then rename); non-ASCII as is, not \\u escapes."""
    with open(path + ".part", "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(path + ".part", path)


def write_set(out_dir, splits):
    """splits: {split: [row]} -> out_dir/<split>.jsonl."""
    os.makedirs(out_dir, exist_ok=True)
    for s, rows in splits.items():
        write_jsonl(os.path.join(out_dir, f"{s}.jsonl"), rows)


def read_jsonl(path):
    """[dict]; fails on a file that is not UTF-8, a line that is not a JSON object, or a last line
    without its newline."""
    if not os.path.isfile(path):
        fail(f"{path} is missing")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path} is not UTF-8 ({e})")
    if data and not data.endswith("\n"):
        fail(f"{path}: the last line has no newline")
    rows = []
    for n, line in enumerate(data.split("\n")[:-1], start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{path}:{n}: not JSON ({e})")
        if not isinstance(row, dict):
            fail(f"{path}:{n}: not a JSON object")
        rows.append(row)
    return rows


def _text(where, value, field):
    if not isinstance(value, str) or not value or value != value.strip():
        fail(f"{where}: {field} is missing, empty, not a string or not trimmed")
    if "\ufffd" in value:
        fail(f"{where}: {field} has a U+FFFD replacement character (bad decoding upstream)")
    return value


def check_chat_line(where, row):
    """One chat line's fields (see the module comment). Returns the first user turn."""
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2 or len(messages) % 2:
        fail(f"{where}: messages is not a list of user/assistant pairs")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            fail(f"{where}: message {k} is not {{role, content}}")
        if m["role"] != ("user", "assistant")[k % 2]:
            fail(f"{where}: message {k} has role {m['role']!r}; turns must alternate, user first")
        _text(where, m["content"], f"message {k}'s content")
    if row.get("lang") not in LANGS:
        fail(f"{where}: lang {row.get('lang')!r} is not one of {LANGS}")
    if row["lang"] == "ko" and not any(hangul_count(m["content"]) for m in messages):
        fail(f"{where}: a Korean example without Hangul")
    _text(where, row.get("source"), "source")
    _text(where, row.get("id"), "id")
    return messages[0]["content"]


def validate_chat_set(out_dir, splits, expected=None):
    """Validates every line (check_chat_line), that no (source, id) and no first user turn is in
    two splits, and, when expected ({split: {lang: count}}) is given, exactly those counts.
    Returns {split: {lang: count}}."""
    seen_id, seen_prompt, counts = {}, {}, {}
    for s in splits:
        path = os.path.join(out_dir, f"{s}.jsonl")
        rows = read_jsonl(path)
        if not rows:
            fail(f"{path} is empty")
        counts[s] = {}
        for n, row in enumerate(rows, start=1):
            where = f"{path}:{n}"
            prompt = check_chat_line(where, row)
            key = (row["source"], row["id"])
            if seen_id.setdefault(key, s) != s:
                fail(f"{where}: id {key} is both in {seen_id[key]} and {s}")
            if seen_prompt.setdefault(prompt, s) != s:
                fail(f"{where}: the prompt {prompt[:60]!r} is both in {seen_prompt[prompt]} "
                     f"and {s}")
            counts[s][row["lang"]] = counts[s].get(row["lang"], 0) + 1
    if expected is not None and counts != expected:
        fail(f"{out_dir}: counts {counts} differ from the expected {expected}")
    return counts


def validate_prompt_set(out_dir, splits, fields, expected=None):
    """Prompt sets: each line has exactly `fields`, all strings: the prompt non-empty and trimmed,
    the completion one space then trimmed text (prompt + completion is the whole text). With a
    completion, no whole text is in two splits; prompts alone may repeat across splits (two
    reviews may start with the same words), not within a file. Counts {split: {"(lines)": n}}
    must equal expected when given."""
    seen, counts = {}, {}
    for s in splits:
        path = os.path.join(out_dir, f"{s}.jsonl")
        rows = read_jsonl(path)
        if not rows:
            fail(f"{path} is empty")
        in_file = set()
        for n, row in enumerate(rows, start=1):
            where = f"{path}:{n}"
            if set(row) != set(fields):
                fail(f"{where}: fields {sorted(row)}, expected {sorted(fields)}")
            prompt = _text(where, row["prompt"], "prompt")
            if "completion" in fields:
                c = row["completion"]
                if not isinstance(c, str) or c[:1] != " " or c[1:2].isspace() or \
                        c != c.rstrip() or not c.strip():
                    fail(f"{where}: completion must be one space then non-empty trimmed text")
                whole = prompt + c
                if seen.setdefault(whole, s) != s:
                    fail(f"{where}: the text {whole[:60]!r} is both in {seen[whole]} and {s}")
            elif prompt in in_file:
                fail(f"{where}: the prompt {prompt!r} is repeated")
            in_file.add(prompt)
        counts[s] = {"(lines)": len(rows)}
    if expected is not None and counts != expected:
        fail(f"{out_dir}: counts {counts} differ from the expected {expected}")
    return counts


def package_version(package):
    """The installed Debian package's version, or "none"."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                       text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "none"


def print_counts(name, counts):
    """One line per split: `name split total lang=count ...`."""
    for s, c in counts.items():
        parts = " ".join(f"{k}={c[k]}" for k in sorted(c))
        print(f"{name:20} {s:5} {sum(c.values()):6}  {parts}")
