#!/usr/bin/env bash
# The ending examples of docs/examples/README.md (session 29), through the stack.
# Run from the repository root: bash docs/examples/endings/make.sh
# The integration test's 20-second jig (a pickup bar, then a drawn A B C on a fiddle) and
# the same request in the piano palette: the loudness of each piece's streamed audio over
# time, the last phrase and the held final chord marked.
set -euo pipefail
out=$(mktemp -d)
.venv/bin/cantus up
compose() {
  .venv/bin/cantus compose --key D --mode minor --tempo 120 --meter 6/8 --bars 12 \
    --style celtic --mood happy --seed 7 --out "$out" "$@" | tail -1
}
jig=$(compose)
piano=$(compose --palette piano)
.venv/bin/cantus down
.venv/bin/python docs/examples/endings/plot.py "$jig" "$piano" docs/examples/endings/loudness.png
cp "$jig/piece.png" docs/examples/endings/jig_leadsheet.png
cp "$jig/pianoroll.png" docs/examples/endings/jig_pianoroll.png
