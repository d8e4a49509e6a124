# Shared by run.sh and perplexity.sh (sourced, not run): settings, the model files and how each is
# made. Every file is cached under $QV_OUT/models and made once:
#   smollm2-f32.gguf      the model cache's SmolLM2-135M-Instruct Q4_1 GGUF dequantised to f32
#                         (scripts/gguf-to-f32.py): the only SmolLM2 weights we have, so "f32"
#                         here means the Q4_1 model's values, and every other type re-quantises them
#   llama-6x384-f32.gguf  random-initialised llama layouts (make_random_gguf.py; SmolLM2's
#   llama-12x768-f32.gguf tokenizer, vocabulary 49152): speed only, never quality
#   <set>-<type>-<quantizer>.gguf   the f32 file quantised by `llmkit quantize` (QUANTIZER=llmkit,
#                         the default once the command exists) or llama.cpp's quantizer
#                         (QUANTIZER=llama.cpp, through quantize_llamacpp.py)
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
py=${VENV:-.venv}/bin/python
QV_OUT=${QV_OUT:-bench/out/quant_vs_llamacpp}
llmkit=$BUILD/llmkit
models=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
q4=$models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
here=bench/quant_vs_llamacpp

die() { echo "quant_vs_llamacpp: $*" >&2; exit 1; }
[[ -f $q4 ]] || die "$q4 not found (scripts/get-models.sh)"
[[ -x $llmkit ]] || die "$llmkit not built (cmake --build $BUILD --target llmkit)"
"$py" -c 'import llama_cpp, gguf' 2>/dev/null ||
  die "llama_cpp or gguf missing in $py (scripts/install-deps.sh --bench)"
QUANTIZER=${QUANTIZER:-auto}
if [[ $QUANTIZER == auto ]]; then
  if "$llmkit" quantize --help >/dev/null 2>&1; then QUANTIZER=llmkit; else QUANTIZER=llama.cpp; fi
fi
mkdir -p "$QV_OUT/models"
# Both sides use OpenMP (this llama.cpp build too) with libgomp's default wait policy (spin a
# while, then sleep), as a user runs them; on a busy machine OMP_WAIT_POLICY=PASSIVE in the
# environment makes both sleep at once (and decode several times slower).
export OMP_NUM_THREADS=$THREADS LLMKIT_THREADS=$THREADS

# f32_of SET: the f32 GGUF of SET (made on first use).
f32_of() {
  local f=$QV_OUT/models/$1-f32.gguf
  if [[ ! -f $f ]]; then
    echo "making $f ..." >&2
    case $1 in
      smollm2) "$py" scripts/gguf-to-f32.py "$q4" "$f" >&2 ;;
      llama-6x384) "$py" $here/make_random_gguf.py "$q4" 6 384 6 1024 "$f" >&2 ;;
      llama-12x768) "$py" $here/make_random_gguf.py "$q4" 12 768 12 2048 "$f" >&2 ;;
      *) die "unknown model set '$1' (smollm2, llama-6x384, llama-12x768)" ;;
    esac
  fi
  echo "$f"
}

# file_of SET TYPE: the GGUF of SET at TYPE (f32, f16, q8_0, q4_0, q4_1, q4_k, q6_k).
file_of() {
  local src
  src=$(f32_of "$1") || return 1
  [[ $2 == f32 ]] && { echo "$src"; return; }
  local f=$QV_OUT/models/$1-$2-$QUANTIZER.gguf
  if [[ ! -f $f ]]; then
    echo "quantising $f ($QUANTIZER) ..." >&2
    if [[ $QUANTIZER == llmkit ]]; then
      "$llmkit" quantize --model "$src" --type "$2" --out "$f" >"$f.log" 2>&1 ||
        { echo "llmkit quantize failed: $f.log" >&2; return 1; }
    else
      "$py" $here/quantize_llamacpp.py "$src" "$2" "$f" "$THREADS" >"$f.log" 2>&1 ||
        { echo "llama.cpp quantize failed: $f.log" >&2; return 1; }
    fi
  fi
  echo "$f"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
