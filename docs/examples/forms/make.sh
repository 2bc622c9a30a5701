#!/usr/bin/env bash
# The drawn-form examples of docs/examples/README.md (issue #14, session 28), through the stack.
# Run from the repository root: bash docs/examples/forms/make.sh
# Each piece leaves the form at auto: its seed draws the phrase pattern, as often as the
# corpus's tunes of its style and meter are shaped so (cantus.melody.phrase_patterns).
set -euo pipefail
out=$(mktemp -d)
.venv/bin/cantus up
compose() { .venv/bin/cantus compose --bars 16 --no-pickup --out "$out" "$@" | tail -1; }
here=docs/examples/forms
jig=$(compose --key G --meter 6/8 --style celtic --seed 1)      # A A' B B'
song=$(compose --key D --meter 2/4 --style folk --seed 2)       # A B C D
answer=$(compose --key A --mode minor --meter 4/4 --style folk --seed 1)  # A A' B C
for name in jig song answer; do
  dir=${!name}
  cp "$dir/piece.png" "$here/${name}_leadsheet.png"
  cp "$dir/pianoroll.png" "$here/${name}_pianoroll.png"
  .venv/bin/python -c "import json,sys; f=json.load(open(sys.argv[1]))['form']; print(sys.argv[2], f['name'], [s['label'] for s in f['sections']])" "$dir/piece.json" "$name"
done
.venv/bin/cantus down
