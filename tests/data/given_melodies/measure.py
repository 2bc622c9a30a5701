"""Measures how Essen folk tunes exported to MIDI as notation programs write them fare as
``cantus compose --harmonize`` requests: the meter, key and pickup the request ends up
with, through the real request validation and isolated reader, against the tune's own.
Run from the repository root: ``python tests/data/given_melodies/measure.py [COUNT]``;
the table it prints is in docs/results/given_melodies.md.

Each tune is exported twice: with its pickup marked by a short first bar, and unmarked
(notes from tick 0). The key it should have is the one of the key signature's major and
relative minor whose tonic ends the tune (tunes that end elsewhere are left out). "Before"
is the request as the CLI sent it until now, the defaults 4/4 and C major filled in.
"""

from __future__ import annotations

import sys
from collections import Counter

from make_fixtures import TEMPO_BPM, midi_file, tonic_key

from cantus.melody.corpus import _abc_jobs
from cantus.music import music21_io
from cantus.music.melody_reading import KeySignature
from cantus.music.notes import Key, Mode
from cantus.requests import RequestError, validate_compose_request
from cantus.v1 import composer_pb2 as api
from cantus.v1 import events_pb2 as pb


def main(count: int) -> None:
    from music21 import key as m21_key

    tally: Counter[str] = Counter()
    for job in _abc_jobs("essen", None)[::37]:
        if tally["tunes"] >= count:
            break
        try:
            score = music21_io.parse_abc_tune(job.payload)
            melody = music21_io.score_to_melody(score, default_tempo_bpm=TEMPO_BPM)
        except Exception:
            continue
        signatures = list(score.recurse().getElementsByClass(m21_key.KeySignature))
        if not signatures or len(melody.bars) > 64:
            continue
        signature = KeySignature(Key((signatures[0].sharps * 7) % 12, Mode.MAJOR), False)
        key = tonic_key(melody, signature)
        if key is None:
            continue
        tally["tunes"] += 1
        first = melody.bars[0].notes[0].onset
        pickup = melody.meter.bar_ticks - first if first else 0
        tally["with a pickup"] += bool(pickup)
        tally["minor"] += key.mode is Mode.MINOR
        before_ok = str(melody.meter) == "4/4" and key == Key(0)
        tally["before: right meter and key"] += before_ok
        for marked in (True, False):
            style = "marked" if marked else "unmarked"
            data = midi_file(melody, pickup, signature, marked, job.tune_id)
            try:
                spec = validate_compose_request(
                    api.ComposeRequest(harmonize_midi=data), max_bars=64
                ).spec
            except RequestError as error:
                tally[f"{style}: refused"] += 1
                print(job.tune_id, style, error)
                continue
            mode = Mode.MINOR if spec.mode == pb.MODE_MINOR else Mode.MAJOR
            meter_ok = (spec.meter_numerator, spec.meter_denominator) == (
                melody.meter.numerator,
                melody.meter.denominator,
            )
            key_ok = Key(spec.key_tonic, mode) == key
            pickup_ok = spec.given_melody.pickup_ticks == pickup
            tally[f"{style}: right meter"] += meter_ok
            tally[f"{style}: right key"] += key_ok
            tally[f"{style}: right pickup"] += pickup_ok
            tally[f"{style}: all three right"] += meter_ok and key_ok and pickup_ok
    for name, value in tally.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
