"""Lyric service. Reads top to bottom as data flows: topics, state, agent, handler.

in:  cantus.melody.bar   (bars of a piece arrive in order on one partition)
out: cantus.lyric.line   (one event per line of lyrics, covering the line's bars)

A piece without a lyrics theme passes each bar through as an empty line (render joins on
lines, so it learns that the bar's lyrics are settled). With a theme, bars are kept in a
Faust table (changelog-backed) until they close a line (``cantus.lyrics.slots``); the line
is written by constrained decoding against the ``lyric_lm`` Triton model, in a worker
thread, and published with one syllable per note. Decoding is seeded by the piece's seed
and the line, so a line written again after a restart comes out the same; render keeps the
first copy per line. A line whose bars hold no notes is published without syllables (the
documented fallback for a silent melody).

Mandarin lyrics (``lyric_ci``): a run of sections of up to ``ci.CI_MAX_BARS`` bars
(``ci.ci_groups``) waits for all its bars, then the ci stanza (词牌) that fits its melody, if
one does, is fitted once and kept in the table (``ci_sections``, ``ci_lines``); each of its
lines is then written carrying its clauses, rhymes and melismas, and published with the
stanza's name.
"""

from __future__ import annotations

import asyncio

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import pb_to_notes, spec_form, spec_meter
from cantus.lyrics import LYRICS_LANGUAGES, REGISTERS
from cantus.lyrics.ci import (
    CI_LANGUAGES,
    CI_MAX_BARS,
    CiLine,
    ci_groups,
    group_bars,
    group_of,
    group_shape,
    received_group,
    stanza_named,
    sung_as_planned,
)
from cantus.lyrics.client import served_lyric_resources
from cantus.lyrics.decoding import DecodedLine, NoWordsFit
from cantus.lyrics.slots import (
    DEFAULT_RHYME_SCHEME,
    RHYME_SCHEME_PATTERN,
    is_rhyme_anchor,
    make_line,
    next_line_bars,
)
from cantus.lyrics.song_form import (
    SungLine,
    line_melody,
    repeated_line,
    section_end,
    stanza_start,
)
from cantus.lyrics.writer import write_piece_line
from cantus.music.form import FormPlan
from cantus.music.notes import MusicError
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import (
    CiLinePlan,
    LyricState,
    WrittenLine,
    note_rows,
    notes_from_rows,
)
from cantus.v1 import events_pb2 as pb

service = StreamService("lyric")
settings = service.settings
melody_bars = service.topic("melody_bar")
piece_state = service.app.Table("lyric-piece-state", default=None, partitions=settings.partitions)
"""piece_id → ``LyricState`` (``cantus.streaming.table_state``)."""
resources = served_lyric_resources(settings)


@service.app.agent(melody_bars)
async def write_lyrics(stream):
    await service.process(stream, handle_melody_bar)


async def handle_melody_bar(bar: pb.MelodyBar, received: Received) -> None:
    if not bar.spec.lyrics_theme.strip():
        await publish_line(
            bar.spec, bar.meta.piece_id, bar.meta.index, bar.meta.index, 1, None, received
        )
        return
    piece_id, index, spec = bar.meta.piece_id, bar.meta.index, bar.spec
    if spec.lyrics_language not in LYRICS_LANGUAGES:
        raise InvalidEvent(f"lyrics_language {spec.lyrics_language!r} is not one of en, zh")
    scheme = spec.lyrics_rhyme_scheme or DEFAULT_RHYME_SCHEME
    if not RHYME_SCHEME_PATTERN.match(scheme):
        raise InvalidEvent(f"lyrics_rhyme_scheme {scheme!r} is not 2..8 letters A..H")
    if spec.lyrics_register and spec.lyrics_register not in REGISTERS[spec.lyrics_language]:
        raise InvalidEvent(
            f"lyrics_register {spec.lyrics_register[:40]!r} is not a register of "
            f"{spec.lyrics_language} lyrics"
        )
    state = LyricState.from_table(piece_state.get(piece_id))
    if index < state.line_start:
        service.log.info("piece %s bar %d: its line is out already, skipped", piece_id, index)
        return
    if str(index) not in state.bars:  # a redelivered bar goes on: its line may be unwritten
        try:
            state.bars[str(index)] = note_rows(pb_to_notes(bar.notes))
        except MusicError as error:
            raise InvalidEvent(f"melody bar {index}: {error}") from None
        piece_state[piece_id] = state.to_table()  # the changelog sees only assignments

    meter = spec_meter(spec)
    plan = spec_form(spec)
    while True:
        start = state.line_start
        received_bars = {int(i): list(notes_from_rows(rows)) for i, rows in state.bars.items()}
        end = section_end(plan, start, spec.bars)  # a line never crosses a section's end
        line_bars = next_line_bars(received_bars, start, meter, end)
        if line_bars is None:
            return
        line_index = len(state.lines)
        sings_ci = settings.lyric_ci and spec.lyrics_language in CI_LANGUAGES
        if sings_ci and not fit_ci_stanza(state, received_bars, start, line_index, spec, plan):
            return  # the stanza's bars are not all in yet
        sung = [
            SungLine(
                int(i),
                entry.first_bar,
                entry.bar_count,
                tuple(entry.melody),
                tuple(entry.words),
                tuple(entry.syllables),
                entry.rhyme,
                tuple(entry.clauses),
            )
            for i, entry in sorted(state.lines.items(), key=lambda item: int(item[0]))
        ]
        stanza = stanza_start(plan, start, sung)
        line = make_line(
            line_index,
            start,
            line_bars,
            meter,
            scheme,
            settings.lyric_melisma,
            stanza_start=stanza,
        )
        planned = state.ci_lines.get(str(start))
        is_anchor = is_rhyme_anchor(line_index - stanza, scheme)
        if planned is not None:
            fitted = CiLine(tuple(planned.merged), tuple(planned.clauses), tuple(planned.rhymes))
            line = sung_as_planned(line, fitted, planned.rhymes_with)
            is_anchor = planned.is_anchor
        melody = line_melody(start, line.slots)
        written = {
            int(i): DecodedLine(entry.words, entry.syllables, entry.rhyme, clauses=entry.clauses)
            for i, entry in state.lines.items()
        }
        again = repeated_line(plan, start, line.bar_count, melody, sung)
        try:
            if again is not None:  # the chorus again: its words again
                decoded = DecodedLine(
                    list(again.words),
                    list(again.syllables),
                    again.rhyme,
                    clauses=list(again.clauses),
                )
            else:
                decoded = await asyncio.to_thread(
                    write_piece_line,
                    resources,
                    line,
                    language=spec.lyrics_language,
                    theme=spec.lyrics_theme,
                    mood=spec.mood,
                    seed=spec.seed,
                    written=written,
                    is_anchor=is_anchor,
                    register=spec.lyrics_register,
                )
        except NoWordsFit as error:
            # deterministic: a retry would fail the same way; the line is sung without words
            service.log.warning(
                "piece %s line %d: %s; left without words", piece_id, line_index, error
            )
            decoded = DecodedLine([], [])
        content = None
        if decoded.syllables:
            syllables = [
                pb.Syllable(bar_index=slot.bar_index, note_index=slot.note_index, text=text)
                for slot, text in zip(line.slots, decoded.syllables, strict=True)
            ]
            content = (syllables, decoded.text)
        ci_stanza = planned.stanza if planned is not None else ""
        await publish_line(
            spec, piece_id, line_index, start, line.bar_count, content, received, ci_stanza
        )
        service.log.info(
            "piece %s line %d (bars %d-%d, %d syllables%s%s): %s",
            piece_id,
            line_index,
            start,
            start + line.bar_count - 1,
            line.syllables,
            f", {ci_stanza}" if ci_stanza else "",
            f", relaxed {'+'.join(decoded.relaxed)}" if decoded.relaxed else "",
            decoded.text,
        )
        for done in range(start, start + line.bar_count):
            state.bars.pop(str(done), None)
        state.lines[str(line_index)] = WrittenLine(
            words=decoded.words,
            syllables=decoded.syllables,
            rhyme=decoded.rhyme,
            clauses=decoded.clauses,
            first_bar=start,
            bar_count=line.bar_count,
            melody=list(melody),
        )
        state.line_start = start + line.bar_count
        piece_state[piece_id] = state.to_table()


def fit_ci_stanza(
    state: LyricState,
    bars: dict[int, list],
    start: int,
    line_index: int,
    spec: pb.PieceSpec,
    plan: FormPlan | None,
) -> bool:
    """Decide the ci stanza of the group of sections (``ci.ci_groups``) that a line
    starting at bar ``start`` opens or is in, once (kept in ``state``); False while the
    group still waits for its bars."""
    groups = ci_groups(plan, spec.bars)
    group = group_of(groups, start)
    if group < 0 or str(group) in state.ci_sections:
        return True
    first, end = groups[group]
    if group_bars(plan, (first, end)) > CI_MAX_BARS:
        state.ci_sections[str(group)] = ""
        return True
    if any(bar not in bars for bar in range(start, end)):
        return False
    parts = received_group(
        bars,
        (start, end),
        spec_meter(spec),
        plan,
        spec.bars,
        first_line=line_index,
        scheme=spec.lyrics_rhyme_scheme or DEFAULT_RHYME_SCHEME,
        melisma=settings.lyric_melisma,
        after=stanza_named(state.ci_sections.get(str(group - 1), "")),
        seen=state.ci_shapes,
    )
    state.ci_sections[str(group)] = parts[-1][0].stanza.name if parts else ""
    for fit, lines in parts:
        state.ci_shapes[group_shape(lines)] = fit.stanza.name
        anchors = {line.rhymes_with for line in lines if line.rhymes_with is not None}
        for line in lines:
            fitted = fit.lines.get(line.index)
            if fitted is not None:
                state.ci_lines[str(line.first_bar)] = CiLinePlan(
                    stanza=fit.stanza.name,
                    merged=list(fitted.merged),
                    clauses=list(fitted.clauses),
                    rhymes=list(fitted.rhymes),
                    rhymes_with=line.rhymes_with,
                    is_anchor=line.index in anchors,
                )
    return True


async def publish_line(
    spec: pb.PieceSpec,
    piece_id: str,
    line_index: int,
    first_bar: int,
    bar_count: int,
    content: tuple[list[pb.Syllable], str] | None,
    received: Received,
    ci_stanza: str = "",
) -> None:
    line = pb.LyricLine(
        meta=new_meta(
            piece_id, line_index, service.name, received_at_unix_ns=received.received_at_ns
        ),
        spec=spec,
        first_bar=first_bar,
        bar_count=bar_count,
    )
    if content is not None:
        line.syllables.extend(content[0])
        line.text = content[1]
        line.ci_stanza = ci_stanza
    await service.publish(line, received=received)
