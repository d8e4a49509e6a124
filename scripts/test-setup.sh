#!/usr/bin/env bash
# Puts in place what some tests read but the repository does not commit (third-party files, from
# packages scripts/install-deps.sh --test installed; nothing is downloaded here). Each step
# is skipped when its files are already there; a step that cannot run leaves its tests to skip
# with a message.
set -uo pipefail
cd "$(dirname "$0")/.."
for step in scripts/test-setup.d/*.sh; do
  [[ -e "$step" ]] || continue
  bash "$step" || echo "test-setup: $step failed; the tests that need it will skip"
done
exit 0
