"""The HMM baseline learns chord transitions and melody emissions and decodes by Viterbi."""

from cantus.harmony.dataset import HarmonizedTune
from cantus.harmony.hmm import HMMHarmonizer
from cantus.harmony.vocabulary import class_to_chord
from cantus.music.notes import Bar, Key, Meter, Note
from cantus.music.styles import Energy, Style

C = Key(0)
FOUR = Meter(4, 4)


def whole(pitch: int) -> Bar:
    return Bar(FOUR, tuple(Note(i * 480, pitch, 480) for i in range(4)))


def tune(pitches: list[int], chords: list[str]) -> HarmonizedTune:
    return HarmonizedTune(
        tune_id="t",
        source="test",
        style=Style.CHORALE,
        energy=Energy.MID,
        key=C,
        tempo_bpm=80.0,
        bars=tuple(whole(p) for p in pitches),
        chords=tuple((c,) * 4 for c in chords),
        voices=tuple((None,) * 4 for _ in chords),
        split="train",
    )


def test_viterbi_follows_the_melody_and_the_transitions():
    training = [
        tune([72, 71, 72], ["C", "G", "C"]),
        tune([67, 74, 72], ["C", "G7", "C"]),
        tune([69, 67, 65, 64], ["F", "C", "F", "C"]),
    ] * 3
    hmm = HMMHarmonizer.fit(training)
    assert len(hmm.states) == 4
    beats = hmm.harmonize([whole(76), whole(74), whole(72)], C)
    assert [len(bar) for bar in beats] == [4, 4, 4]
    names = [str(class_to_chord(c, C, inversion)) for bar in beats for c, inversion in bar]
    assert names[0] == "C" and names[-1] == "C"
    assert names[4] in ("G", "G7")  # D over the middle bar
