#!/usr/bin/env bash
# Runs one tests/serve script with the project venv's Python (it holds the openai client), or the
# system's when there is no venv (the script then skips what it cannot import).
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="$root/.venv/bin/python"
[[ -x $py ]] || py=/usr/bin/python3
exec "$py" "$@"
