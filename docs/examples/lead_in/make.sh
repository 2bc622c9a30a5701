#!/usr/bin/env bash
# The lead-in examples of docs/examples/README.md (issue #14, session 33), through the stack:
# the same two requests composed with the upbeats into returns drawn again from the model's
# posterior (served, cantus.melody.lead_in) and without (CANTUS_MELODY_LEAD_IN=false).
# Run from the repository root: bash docs/examples/lead_in/make.sh
set -euo pipefail
here=docs/examples/lead_in
for mode in without with; do
  out=$(mktemp -d)
  if [ "$mode" = without ]; then CANTUS_MELODY_LEAD_IN=false .venv/bin/cantus up; else .venv/bin/cantus up; fi
  compose() { .venv/bin/cantus compose --bars 16 --out "$out" "$@" | tail -1; }
  song=$(compose --key G --meter 4/4 --style folk --form AABA --seed 12)
  reel=$(compose --key D --meter 2/2 --style celtic --form AABB --seed 5)
  for name in song reel; do
    dir=${!name}
    cp "$dir/piece.png" "$here/${name}_${mode}_leadsheet.png"
    cp "$dir/pianoroll.png" "$here/${name}_${mode}_pianoroll.png"
    cp "$dir/piece.mid" "$here/${name}_${mode}.mid"
  done
  .venv/bin/cantus down
done
