"""Derived chord labels: chords for an unannotated folk or celtic melody, read from the
tune's own notes with the whole tune in view.

Real chord-annotated folk and celtic tunes are too few to train on (about twenty ship
offline, ``cantus.harmony.dataset``), so the training set labels the corpus melodies with
this analysis and keeps the real annotations for validation and test. The labels are an
analysis, not a performer's chords: the model learns this analysis for those styles.

Method: a Viterbi search over the tune's chord segments (``rules.chord_segments``: a bar,
or its two halves where the meter allows), choosing each segment's chord from the style's
diatonic candidates (``rules._candidates``). A segment scores the chord-tone share of its
metrically weighted notes plus the style's prior for the chord (``rules._fit``, the
rule-based harmoniser's scoring), scaled by the segment's share of the bar; moving between
chords scores the functional-progression table (``rules._transition``) less a change cost,
higher inside a bar than at a barline (a bar splits only when its halves clearly ask for
two chords); the first chord leans to the tonic and the last must earn the cadence bonus.
Unlike the rule-based harmoniser, which decides bar by bar with one bar of lookahead, the
analysis picks the best chord sequence for the whole tune.
"""

from __future__ import annotations

from collections.abc import Sequence

from cantus.harmony import rules
from cantus.harmony.features import beat_spans
from cantus.music.chords import ChordSymbol
from cantus.music.notes import Bar, Key
from cantus.music.styles import Style

BARLINE_CHANGE_COST = 0.05
"""Cost of a new chord at a barline: small, so a bar keeps its chord only on evidence."""
MID_BAR_CHANGE_COST = {Style.FOLK: 0.25, Style.CELTIC: 0.2, Style.CHORALE: 0.1}
"""Cost of a new chord inside a bar; the rule-based harmoniser's split margins."""
TRANSITION_WEIGHT = 0.5
OPENING_TONIC_BONUS = 0.1


def analyse_chords(bars: Sequence[Bar], key: Key, style: Style) -> list[list[ChordSymbol]]:
    """One chord per beat of every bar (``features.beat_spans``): the best-scoring chord
    sequence over the tune's chord segments, a segment's chord on each beat that starts in
    it. Deterministic; an all-rest tune gets the tonic throughout."""
    candidates = rules._candidates(key, style)
    tonic = candidates[0].symbol
    segments: list[tuple[int, int, int, float, dict[int, float]]] = []
    # (bar index, onset, duration, share of the bar, weighted pitch classes)
    for index, bar in enumerate(bars):
        for onset, duration in rules.chord_segments(bar.meter, bar):
            weights = rules._weighted_pitch_classes(bar, (onset, duration))
            segments.append((index, onset, duration, duration / bar.meter.bar_ticks, weights))
    if not segments:
        return []

    def emission(segment: int, choice: int) -> float:
        _, _, _, share, weights = segments[segment]
        if not weights:
            return 0.0  # a silent segment asks for nothing: the chord before holds
        candidate = candidates[choice]
        return share * (rules._fit(candidate.symbol, weights) + candidate.prior)

    def move(segment: int, before: int, after: int) -> float:
        if before == after:
            return 0.0
        at_barline = segments[segment][1] == 0
        cost = BARLINE_CHANGE_COST if at_barline else MID_BAR_CHANGE_COST[style]
        return (
            TRANSITION_WEIGHT
            * rules._transition(candidates[before].symbol, candidates[after].symbol, key)
            - cost
        )

    count = len(candidates)
    scores = [
        emission(0, c) + (OPENING_TONIC_BONUS if candidates[c].symbol == tonic else 0.0)
        for c in range(count)
    ]
    back: list[list[int]] = []
    for segment in range(1, len(segments)):
        step_back, step_scores = [], []
        for after in range(count):
            best = max(range(count), key=lambda b: scores[b] + move(segment, b, after))
            step_back.append(best)
            step_scores.append(scores[best] + move(segment, best, after) + emission(segment, after))
        back.append(step_back)
        scores = step_scores
    scores = [
        s + (rules._FINAL_TONIC_BONUS if candidates[c].symbol == tonic else 0.0)
        for c, s in enumerate(scores)
    ]
    choice = max(range(count), key=lambda c: scores[c])
    path = [choice]
    for step_back in reversed(back):
        choice = step_back[choice]
        path.append(choice)
    path.reverse()

    result: list[list[ChordSymbol]] = [[] for _ in bars]
    for (index, onset, duration, _, _), choice in zip(segments, path, strict=True):
        bar = bars[index]
        for beat_onset, _ in beat_spans(bar.meter):
            if onset <= beat_onset < onset + duration:
                result[index].append(candidates[choice].symbol)
    return result
