#!/usr/bin/env bash
# The pickup examples of docs/examples/README.md (issue #14, session 27), through the stack.
# Run from the repository root: bash docs/examples/pickups/make.sh
set -euo pipefail
out=$(mktemp -d)
.venv/bin/cantus up
compose() { .venv/bin/cantus compose --bars 16 --out "$out" "$@" | tail -1; }
pickup=$(compose --key G --meter 6/8 --style celtic --seed 7 --pickup)
downbeat=$(compose --key G --meter 6/8 --style celtic --seed 7 --no-pickup)
sung=$(compose --key G --meter 4/4 --seed 21 --lyrics "the sea at night" --pickup)
here=docs/examples/pickups
cp "$pickup/piece.png" "$here/g_major_jig_pickup_leadsheet.png"
cp "$pickup/pianoroll.png" "$here/g_major_jig_pickup_pianoroll.png"
cp "$downbeat/piece.png" "$here/g_major_jig_downbeat_leadsheet.png"
cp "$sung/piece.png" "$here/g_major_sea_at_night_leadsheet.png"
.venv/bin/cantus down
