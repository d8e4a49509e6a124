#!/usr/bin/env python3
"""Reference renderer for tests/tokenizer/test_chat_template_reference.cpp.

Renders chat templates with transformers' own Jinja environment (the one apply_chat_template
uses: transformers.utils.chat_template_utils._compile_jinja_template) and the variables
apply_chat_template passes: messages, tools and documents (None unless given),
add_generation_prompt, bos_token, eos_token, then the case's extra variables.

Usage: chat_template_reference.py CASES.json > RESULTS.json (exit status 77: no transformers)
CASES.json: {"cases": [{"template", "messages", "add_generation_prompt", "bos_token",
"eos_token", "extra"}]}; RESULTS.json: one {"ok": true, "text"} or {"ok": false, "error"} per case.
"""
import json
import sys

try:
    from transformers.utils.chat_template_utils import _compile_jinja_template
except ImportError as e:  # the test skips, saying this
    print(f"transformers does not import: {e}", file=sys.stderr)
    sys.exit(77)


def render(compiled, case):
    variables = {"tools": None, "documents": None}
    variables.update(case["extra"])
    return compiled.render(
        messages=case["messages"],
        add_generation_prompt=case["add_generation_prompt"],
        bos_token=case["bos_token"],
        eos_token=case["eos_token"],
        **variables,
    )


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    compiled = {}
    results = []
    for case in cases:
        try:
            src = case["template"]
            if src not in compiled:
                compiled[src] = _compile_jinja_template(src)
            results.append({"ok": True, "text": render(compiled[src], case)})
        except Exception as e:  # the C++ side must fail too; the message is for the log
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
