"""Writes the Essen fixture files of tests/music/test_melody_files.py: a few Essen folk
tunes from the music21 corpus exported the way a notation program writes MIDI, and two
as MusicXML and ABC. Run from the repository root:
``python tests/data/given_melodies/make_fixtures.py``.

Each MIDI file is type 1 at 480 ticks per quarter: a conductor track (title, time
signature, key signature with the major mode byte, as notation programs write it, tempo)
and one track named Melody whose notes start at tick 0. A pickup is written as notation
programs do, as a short first bar (a time signature of its length, then the tune's), or
for the ``-unmarked`` files not at all. ``expected.json`` holds what a reader should find:
the meter, the pickup in ticks, the tempo and the key, the key told by the Essen tunes'
last note (the tonic in these tunes) between the signature's major and relative minor.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido

from cantus.melody.corpus import _abc_jobs
from cantus.music import music21_io
from cantus.music.melody_reading import KeySignature
from cantus.music.notes import Key, Melody, Mode

HERE = Path(__file__).parent
COUNT = 8
TEMPO_BPM = 96.0
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def tonic_key(melody: Melody, signature: KeySignature) -> Key | None:
    last = melody.notes_absolute()[-1].pitch % 12
    for key in signature.candidates():
        if key.tonic == last:
            return key
    return None


def midi_file(melody: Melody, pickup: int, signature: KeySignature, marked: bool, title: str):
    meter = melody.meter
    shift = meter.bar_ticks - pickup if pickup else 0
    notes = [(n.onset - shift, n.pitch, n.duration) for n in melody.notes_absolute()]
    conductor = [mido.MetaMessage("track_name", name=title)]
    if pickup and marked:
        # The pickup bar's own time signature: pickup ticks in units of the denominator.
        denominator = meter.denominator
        while pickup % (1920 // denominator):
            denominator *= 2  # a pickup of an eighth in 2/4 is written 1/8
        conductor.append(
            mido.MetaMessage(
                "time_signature",
                numerator=pickup // (1920 // denominator),
                denominator=denominator,
            )
        )
        conductor.append(
            mido.MetaMessage(
                "time_signature",
                numerator=meter.numerator,
                denominator=meter.denominator,
                time=pickup,
            )
        )
    else:
        conductor.append(
            mido.MetaMessage(
                "time_signature", numerator=meter.numerator, denominator=meter.denominator
            )
        )
    conductor.append(mido.MetaMessage("key_signature", key=MAJOR_NAMES[signature.key.tonic]))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(TEMPO_BPM)))
    events = []
    for onset, pitch, duration in notes:
        events.append((onset, 1, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((onset + duration, 0, mido.Message("note_off", note=pitch, velocity=0)))
    track = [mido.MetaMessage("track_name", name="Melody"), mido.Message("program_change")]
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack(conductor))
    midi.tracks.append(mido.MidiTrack(track))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def main() -> None:
    from music21 import key as m21_key

    candidates = []
    for job in _abc_jobs("essen", None)[::23]:
        try:
            score = music21_io.parse_abc_tune(job.payload)
            melody = music21_io.score_to_melody(score, default_tempo_bpm=TEMPO_BPM)
        except Exception:
            continue
        if str(melody.meter) not in ("2/4", "3/4", "4/4", "6/8") or len(melody.bars) > 24:
            continue
        signatures = list(score.recurse().getElementsByClass(m21_key.KeySignature))
        if not signatures:
            continue
        signature = KeySignature(Key((signatures[0].sharps * 7) % 12, Mode.MAJOR), False)
        key = tonic_key(melody, signature)
        if key is not None:
            candidates.append((job, melody, signature, key))
        minors = sum(1 for c in candidates if c[3].mode is Mode.MINOR)
        if len(candidates) >= 60 and minors >= 2:
            break
    # Two minor tunes (one in 4/4, the case), then two of each meter.
    chosen = [c for c in candidates if c[3].mode is Mode.MINOR and str(c[1].meter) == "4/4"][:1]
    chosen += [c for c in candidates if c[3].mode is Mode.MINOR and c not in chosen][:1]
    for meter in ("2/4", "3/4", "4/4", "6/8"):
        have = sum(1 for c in chosen if str(c[1].meter) == meter)
        chosen += [c for c in candidates if str(c[1].meter) == meter and c not in chosen][
            : max(0, 2 - have)
        ]
    expected = {}
    for index, (job, melody, signature, key) in enumerate(chosen[:COUNT]):
        first = melody.bars[0].notes[0].onset
        pickup = melody.meter.bar_ticks - first if first else 0
        stem = job.tune_id.split("/")[1].replace(".abc#", "-")
        marked = index % 2 == 0
        data = midi_file(melody, pickup, signature, marked, f"Essen {job.tune_id}")
        name = f"{stem}{'' if marked or not pickup else '-unmarked'}.mid"
        (HERE / name).write_bytes(data)
        expected[name] = {
            "tune_id": job.tune_id,
            "meter": str(melody.meter),
            "pickup_ticks": pickup,
            "tempo_bpm": TEMPO_BPM,
            "key": key.name,
            "bars": len(melody.bars),
            "notes": [[n.onset, n.pitch, n.duration] for n in melody.notes_absolute()],
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    for name, tune in expected.items():
        print(name, tune["meter"], tune["key"], tune["pickup_ticks"])


if __name__ == "__main__":
    main()
