#!/usr/bin/env bash
# The cadence-hold examples of docs/examples/README.md (issue #14, session 32), through the stack.
# Run from the repository root: bash docs/examples/cadences/make.sh
# A reel (2/2), whose phrases mostly run on through their cadence bars, and a waltz (3/4),
# whose phrases hold their cadence tone for two beats in about half the corpus's bars
# (cantus.melody.phrase_endings.CADENCE_HOLDS).
set -euo pipefail
out=$(mktemp -d)
.venv/bin/cantus up
compose() { .venv/bin/cantus compose --bars 16 --no-pickup --out "$out" "$@" | tail -1; }
here=docs/examples/cadences
reel=$(compose --key D --meter 2/2 --style celtic --seed 3)
waltz=$(compose --key G --meter 3/4 --style folk --seed 4)
for name in reel waltz; do
  dir=${!name}
  cp "$dir/piece.png" "$here/${name}_leadsheet.png"
  cp "$dir/pianoroll.png" "$here/${name}_pianoroll.png"
done
.venv/bin/cantus down
