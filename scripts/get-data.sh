#!/usr/bin/env bash
# Makes the labelled data sets of the fine-tuning work from Debian and PyPI packages (nothing else
# is downloaded, nothing is committed) and validates each one:
#   $LLMKIT_DATA (default ~/.cache/llmkit/data)/<name>/{train,val,test}.tsv   text<TAB>label
#     sentiment-en        vaderSentiment 3.3.2 sdist (PyPI, SHA-256 below): movie-review snippets,
#                         binary; also test-{tweets,amazon,nyt}.tsv, the paper's other domains
#     sentiment-en-score  the same snippets, label = mean human rating -4..+4 (regression)
#     reuters-corn/-grain Debian's weka: Reuters-21578 ARFF examples, the package's train/test
#     topics-ko           Debian's libreoffice-help-ko: Korean help pages labelled by module
#     korean-corpus       corpus.txt: Korean text of Debian packages for pretraining (no labels)
# and the instruction and preference-experiment sets, <name>/{train,[val,]test}.jsonl:
#     faq-debian          Debian's debian-faq and debian-faq-ko: FAQ questions and answers, en + ko
#     faq-python          Debian's python3.11-doc: the Python FAQ's questions and answers
#     chatterbot          chatterbot-corpus 1.3.3 sdist (PyPI, SHA-256 below): en + ko dialogues
#     wordnet-define      Debian's wordnet-base: "Define the word X." -> gloss and example
#     instruct            the four above together (train/val/test); instruct-ko its Korean lines
#     reviews             sentiment-en's movie snippets as {prompt: first 2-8 words, completion}
#     reviews-prompts     their prompts alone (the controlled-sentiment experiment's prompts)
# The Debian packages come from scripts/install-deps.sh --data. Idempotent: a set whose folder has
# .complete is not made again, only checked. Usage: scripts/get-data.sh [NAME...] (default all).
# See docs/datasets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${LLMKIT_DATA:-$HOME/.cache/llmkit/data}
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in scripts/data
mkdir -p "$DATA"

# fetch PROJECT VERSION FILE SHA256: FILE of PROJECT==VERSION from PyPI (address from PyPI's simple
# index, PEP 503) into $DATA/downloads unless it is there with the right hash (as get-models.sh).
fetch() {
  local project=$1 version=$2 file=$3 sha=$4
  local dl="$DATA/downloads"
  mkdir -p "$dl"
  if [[ ! -f "$dl/$file" ]] || ! echo "$sha  $dl/$file" | sha256sum --status -c -; then
    echo "get-data: downloading $file ($project $version) from PyPI"
    $PY - "$project" "$version" "$file" "$dl" <<'PY'
import os, re, sys, urllib.request
project, version, file, dl = sys.argv[1:]
index = os.environ.get("LLMKIT_PYPI_SIMPLE", "https://pypi.org/simple")
try:
    page = urllib.request.urlopen(f"{index}/{project}/", timeout=60).read().decode()
    links = dict((m.group(2), m.group(1))
                 for m in re.finditer(r'href="([^"#]+)[^"]*"[^>]*>([^<]+)</a>', page))
    if file not in links:
        sys.exit(f"get-data: {file} is not on {index}/{project}/")
    tmp = os.path.join(dl, file + ".part")
    with urllib.request.urlopen(links[file], timeout=60) as r, open(tmp, "wb") as f:
        while chunk := r.read(1 << 20):
            f.write(chunk)
    os.replace(tmp, os.path.join(dl, file))
except OSError as e:  # URLError, timeouts, disk
    sys.exit(f"get-data: cannot download {file} from {index}/{project}/: {e}")
PY
  fi
  if ! echo "$sha  $dl/$file" | sha256sum --status -c -; then
    echo "get-data: $dl/$file does not have the recorded SHA-256 $sha" >&2
    exit 1
  fi
}

# need PACKAGE...: fails with one line when a Debian package is not installed.
need() {
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      echo "get-data: the Debian package $p is missing: run scripts/install-deps.sh --data" >&2
      exit 1
    fi
  done
}

# skip NAME...: true when every NAME was made before (has .complete); those are re-validated at
# the end (scripts/data/check.py), so a damaged cache fails instead of passing silently. A set
# made in this run (mark) and asked for again (instruct asks for its parts) was just validated.
skipped=()
made=()
skip() {
  for n in "$@"; do [[ -f "$DATA/$n/.complete" ]] || return 1; done
  for n in "$@"; do
    [[ " ${skipped[*]} ${made[*]} " == *" $n "* ]] || skipped+=("$n")
  done
}
help_version() { dpkg-query -W -f='${Version}' libreoffice-help-ko 2>/dev/null || echo none; }
mark() { for n in "$@"; do touch "$DATA/$n/.complete"; made+=("$n"); done; }

sentiment_en() {
  skip sentiment-en sentiment-en-score && return 0
  local sdist=vaderSentiment-3.3.2.tar.gz
  fetch vaderSentiment 3.3.2 $sdist 5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9
  local tmp
  tmp=$(mktemp -d)
  tar -xzf "$DATA/downloads/$sdist" -C "$tmp" \
    vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz \
    vaderSentiment-3.3.2/LICENSE.txt
  tar -xzf "$tmp/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz" -C "$tmp"
  $PY scripts/data/sentiment_en.py "$tmp/hutto_ICWSM_2014" "$DATA"
  for n in sentiment-en sentiment-en-score; do
    cp "$tmp/vaderSentiment-3.3.2/LICENSE.txt" "$DATA/$n/LICENSE"
    cp "$tmp/hutto_ICWSM_2014/_README_.txt" "$DATA/$n/README-hutto_ICWSM_2014.txt"
  done
  rm -rf "$tmp"
  mark sentiment-en sentiment-en-score
}

reuters() {
  skip reuters-corn reuters-grain && return 0
  need weka
  $PY scripts/data/reuters.py /usr/share/doc/weka/examples "$DATA"
  mark reuters-corn reuters-grain
}

topics_ko() {
  skip topics-ko && return 0
  need libreoffice-help-ko
  $PY scripts/data/topics_ko.py /usr/share/libreoffice/help/ko "$DATA/topics-ko" "$(help_version)"
  mark topics-ko
}

korean_corpus() {
  skip korean-corpus && return 0
  topics_ko  # the corpus leaves out the paragraphs of topics-ko's val and test pages
  need libreoffice-help-ko libreoffice-l10n-ko debian-faq-ko man-db \
    "installation-guide-$(dpkg --print-architecture)"
  $PY scripts/data/korean_corpus.py /usr/share/libreoffice/help/ko "$DATA/topics-ko" \
    "$DATA/korean-corpus"
  mark korean-corpus
}

faq_debian() {
  skip faq-debian && return 0
  need debian-faq debian-faq-ko
  $PY scripts/data/faq_debian.py /usr/share/doc/debian/FAQ "$DATA/faq-debian"
  cp /usr/share/doc/debian-faq/copyright "$DATA/faq-debian/LICENSE"
  mark faq-debian
}

faq_python() {
  skip faq-python && return 0
  need python3.11-doc
  $PY scripts/data/faq_python.py /usr/share/doc/python3.11/html/faq "$DATA/faq-python"
  cp /usr/share/doc/python3.11-doc/copyright "$DATA/faq-python/LICENSE"
  mark faq-python
}

chatterbot() {
  skip chatterbot && return 0
  need python3-yaml
  local sdist=chatterbot_corpus-1.3.3.tar.gz top=chatterbot_corpus-1.3.3
  local sha=615b5c4c605154f60ae51d03ed918ed92e9d32bc2b144b759bbc64ecdbe18481
  fetch chatterbot-corpus 1.3.3 $sdist $sha
  local tmp
  tmp=$(mktemp -d)
  tar -xzf "$DATA/downloads/$sdist" -C "$tmp" $top/license.md \
    $top/chatterbot_corpus/data/english $top/chatterbot_corpus/data/korean
  $PY scripts/data/chatterbot.py "$tmp/$top/chatterbot_corpus/data" "$DATA/chatterbot"
  cp "$tmp/$top/license.md" "$DATA/chatterbot/LICENSE"
  rm -rf "$tmp"
  mark chatterbot
}

wordnet_define() {
  skip wordnet-define && return 0
  need wordnet-base
  $PY scripts/data/wordnet_define.py /usr/share/wordnet "$DATA/wordnet-define"
  cp /usr/share/doc/wordnet-base/copyright "$DATA/wordnet-define/LICENSE"
  mark wordnet-define
}

instruct() {
  skip instruct instruct-ko && return 0
  faq_debian
  faq_python
  chatterbot
  wordnet_define
  $PY scripts/data/instruct.py "$DATA"
  mark instruct instruct-ko
}

reviews() {
  skip reviews reviews-prompts && return 0
  sentiment_en  # the snippets and their split come from sentiment-en-score
  $PY scripts/data/reviews.py "$DATA"
  cp "$DATA/sentiment-en/LICENSE" "$DATA/reviews/LICENSE"
  cp "$DATA/sentiment-en/LICENSE" "$DATA/reviews-prompts/LICENSE"
  mark reviews reviews-prompts
}

all=(sentiment-en sentiment-en-score reuters-corn reuters-grain topics-ko korean-corpus
     faq-debian faq-python chatterbot wordnet-define instruct instruct-ko reviews reviews-prompts)
names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=("${all[@]}")
for n in "${names[@]}"; do
  case "$n" in
    sentiment-en | sentiment-en-score) sentiment_en ;;
    reuters-corn | reuters-grain) reuters ;;
    topics-ko) topics_ko ;;
    korean-corpus) korean_corpus ;;
    faq-debian) faq_debian ;;
    faq-python) faq_python ;;
    chatterbot) chatterbot ;;
    wordnet-define) wordnet_define ;;
    instruct | instruct-ko) instruct ;;
    reviews | reviews-prompts) reviews ;;
    *) echo "get-data: unknown data set $n (${all[*]})" >&2; exit 2 ;;
  esac
done
if [[ ${#skipped[@]} -gt 0 ]]; then
  echo "get-data: made before, checking again: ${skipped[*]}"
  $PY scripts/data/check.py "$DATA" "$(help_version)" "${skipped[@]}" > /dev/null
fi
echo "get-data: $DATA"
$PY scripts/data/table.py "$DATA" "${names[@]}"
