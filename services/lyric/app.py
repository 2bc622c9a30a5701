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
"""

from __future__ import annotations

import asyncio

from cantus.events.codec import InvalidEvent, new_meta
from cantus.events.conversions import pb_to_notes, spec_form, spec_meter
from cantus.lyrics import LYRICS_LANGUAGES, REGISTERS
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
from cantus.music.notes import MusicError
from cantus.streaming import Received, StreamService
from cantus.streaming.table_state import LyricState, WrittenLine, note_rows, notes_from_rows
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
                    is_anchor=is_rhyme_anchor(line_index - stanza, scheme),
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
        await publish_line(spec, piece_id, line_index, start, line.bar_count, content, received)
        service.log.info(
            "piece %s line %d (bars %d-%d, %d syllables%s): %s",
            piece_id,
            line_index,
            start,
            start + line.bar_count - 1,
            line.syllables,
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


async def publish_line(
    spec: pb.PieceSpec,
    piece_id: str,
    line_index: int,
    first_bar: int,
    bar_count: int,
    content: tuple[list[pb.Syllable], str] | None,
    received: Received,
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
    await service.publish(line, received=received)
