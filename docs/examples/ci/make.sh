#!/usr/bin/env bash
# The ci examples of docs/examples/README.md (issue #21, session 34), through the stack:
# the same Mandarin requests sung to the ci stanza (词牌) their tune allows (served,
# cantus.lyrics.ci) and cut into clauses by the breath alone (CANTUS_LYRIC_CI=false).
# Run from the repository root: bash docs/examples/ci/make.sh
set -euo pipefail
here=docs/examples/ci
: > "$here/lyrics.md"
for mode in without with; do
  out=$(mktemp -d)
  if [ "$mode" = without ]; then CANTUS_LYRIC_CI=false .venv/bin/cantus up; else .venv/bin/cantus up; fi
  compose() { .venv/bin/cantus compose --bars 16 --form AABA --lang zh --out "$out" "$@" | tail -1; }
  moon=$(compose --key G --meter 4/4 --style folk --mood calm --lyrics 明月思乡 --seed 3)
  hills=$(compose --key D --meter 3/4 --style folk --mood happy --lyrics 雨后青山 --seed 8)
  river=$(compose --key A --mode minor --meter 4/4 --style folk --mood sad --lyrics 江上送别 --seed 21)
  for name in moon hills river; do
    dir=${!name}
    cp "$dir/piece.png" "$here/${name}_${mode}_leadsheet.png"
    cp "$dir/piece.mid" "$here/${name}_${mode}.mid"
    .venv/bin/python - "$dir/piece.json" "$name ($mode ci)" >> "$here/lyrics.md" <<'PY'
import json, sys
piece = json.load(open(sys.argv[1]))
stanzas = list(dict.fromkeys(line["ci_stanza"] for line in piece["lyrics"] if line.get("ci_stanza")))
print(f"**{sys.argv[2]}**: {piece['request'].get('lyrics_theme')}, "
      f"{'调寄《' + '》《'.join(stanzas) + '》' if stanzas else 'no stanza'}  ")
print(" / ".join(line["text"] for line in piece["lyrics"]))
print()
PY
  done
  .venv/bin/cantus down
done
