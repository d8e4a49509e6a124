#!/usr/bin/env bash
# Writes an English->Korean parallel corpus from the Korean message catalogs (.mo files under
# /usr/share/locale/ko/LC_MESSAGES/) that Debian packages ship: each msgid (English) is paired with
# its msgstr (Korean). Installs the packages below when missing (apt-get, idempotent), reads only
# the catalogs those packages own (so the output depends on the package versions, not on what else
# is installed), and writes `english<TAB>korean` lines sorted by code point. See
# docs/translation-corpus.md. Usage: scripts/make-parallel-corpus.sh OUT.tsv
set -euo pipefail
out=${1:?usage: make-parallel-corpus.sh OUT.tsv}

# Packages with a Korean catalog, chosen for size: command-line tools and data packages, no
# servers, no desktop applications. ~33,000 messages, ~26,000 distinct pairs after filtering.
packages=(
  coreutils tar bash grep sed findutils gawk cpio m4 flex make xz-utils nano mc-data sudo
  gettext gettext-base wget git procps login man-db systemd libpam-runtime libc-l10n
  apt libapt-pkg6.0 dpkg debconf-i18n postgresql-client-15
  libglib2.0-data libgtk2.0-common libgtk-3-common libgdk-pixbuf2.0-common shared-mime-info
  xkb-data iso-codes
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "make-parallel-corpus: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# The Korean catalogs of those packages, one "package<TAB>path" a line. Docker images often drop
# /usr/share/locale through dpkg's path-exclude; then the files are listed but absent.
catalogs=$(mktemp)
trap 'rm -f "$catalogs"' EXIT
for p in "${packages[@]}"; do
  dpkg -L "$p" 2>/dev/null | grep -E '/locale/ko/LC_MESSAGES/[^/]+\.mo$' | sort |
    sed "s|^|$p\t|" >>"$catalogs" || true
done

mkdir -p "$(dirname "$out")"
/usr/bin/python3 - "$catalogs" "$out" <<'PY'
"""Reads .mo catalogs (GNU gettext binary format) and writes the deduplicated English->Korean pairs."""
import collections
import re
import struct
import sys

catalog_list, out_path = sys.argv[1], sys.argv[2]


def read_mo(path):
    """Yields (msgid, msgstr) strings of a .mo file; plural forms keep msgid / msgstr[0]. The
    charset comes from the header entry (a few old GNU catalogs are EUC-KR, most UTF-8)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    _, n, orig_off, trans_off = struct.unpack(order + "4I", data[4:20])
    charset = "utf-8"
    entries = []
    for i in range(n):
        olen, opos = struct.unpack(order + "2I", data[orig_off + 8 * i:orig_off + 8 * i + 8])
        tlen, tpos = struct.unpack(order + "2I", data[trans_off + 8 * i:trans_off + 8 * i + 8])
        msgid = data[opos:opos + olen].split(b"\0")[0]  # msgid (msgid_plural follows a NUL)
        msgstr = data[tpos:tpos + tlen].split(b"\0")[0]  # msgstr[0]
        if not msgid:
            m = re.search(rb"charset=([A-Za-z0-9_-]+)", msgstr)
            charset = m.group(1).decode("ascii") if m else charset
        entries.append((msgid.split(b"\x04")[-1], msgstr))  # drop a msgctxt ("ctxt\x04msgid")
    for msgid, msgstr in entries:
        yield msgid.decode(charset), msgstr.decode(charset)


def normalise(text):
    """Unifies line ends, collapses runs of spaces, trims each line and the whole message."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \u00a0]+", " ", line).strip(" ") for line in text.split("\n")]
    return "\n".join(lines).strip()


def escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


HANGUL = re.compile(r"[\uac00-\ud7a3]")
LETTER = re.compile(r"[A-Za-z]{2}")

per_package = collections.Counter()
seen = collections.defaultdict(collections.Counter)  # english -> Counter of korean
stats = collections.Counter()
for line in open(catalog_list, encoding="utf-8"):
    package, path = line.rstrip("\n").split("\t")
    try:
        entries = list(read_mo(path))
    except (OSError, struct.error, LookupError, UnicodeDecodeError) as e:
        print(f"make-parallel-corpus: skipping {path}: {e}", file=sys.stderr)
        continue
    for raw_id, raw_str in entries:
        stats["messages"] += 1
        if not raw_id:
            stats["headers"] += 1
            continue
        en, ko = normalise(raw_id), normalise(raw_str)
        if not ko or ko == en or not HANGUL.search(ko):
            stats["untranslated"] += 1  # empty, copied, or left in English
            continue
        if not LETTER.search(en):
            stats["no English words"] += 1  # "%s: %s", "--", single letters
            continue
        seen[en][ko] += 1
        per_package[package] += 1

# One translation per English message: the most frequent one, ties to the smallest string.
pairs = sorted((en, min(kos.items(), key=lambda kv: (-kv[1], kv[0]))[0]) for en, kos in seen.items())
with open(out_path, "w", encoding="utf-8", newline="\n") as f:
    for en, ko in pairs:
        f.write(f"{escape(en)}\t{escape(ko)}\n")

distinct = sum(len(kos) for kos in seen.values())
print(f"make-parallel-corpus: {stats['messages']} messages in {sum(1 for _ in open(catalog_list))} catalogs")
for key in ("headers", "untranslated", "no English words"):
    print(f"  skipped {key}: {stats[key]}")
print(f"  kept {sum(per_package.values())} pairs, {distinct} distinct, "
      f"{len(pairs)} distinct English messages (one translation each) -> {out_path}")
for package, count in sorted(per_package.items(), key=lambda kv: (-kv[1], kv[0])):
    print(f"  {package:24s} {count}")
PY
