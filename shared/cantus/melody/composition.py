"""A piece's melody that follows its form plan: what to decode, what to reuse, what to vary.

``FormComposer`` walks the plan (``cantus.music.form``) bar by bar from wherever the piece
stands (given bars, or bars recorded before a restart) and yields each new bar as soon as it
exists, so the melody service can publish it at once:

* a ``NEW`` section is decoded phrase by phrase: one model request per phrase, ending in the
  phrase's cadence (a half cadence inside a section, the section's own at its end), with the
  section's key area and energy as the controls;
* a ``REPEAT`` section copies its source section note for note;
* a ``VARY`` section copies its source, a note or two changed in about a third of its bars
  (``ornament``: a neighbour tone, a passing tone, a split or held note, a dotted rhythm),
  and decodes its closing bars anew towards its cadence, the way a returning strain changes
  its ending (``varied_from``: a four-bar phrase its cadence bar, or its last two as often
  as the corpus's varied phrases), or, as often as the corpus's returns do, keeps the
  source's cadence bar too, its cadence tone moved to the return's own cadence where it
  differs, as a second ending does (``kept_closing``);
* a new four-bar phrase repeats its first bar in its third as often as the corpus's new
  phrases do (``echo_source``; its first two bars are one request without a cadence), and
  a strain's second or fourth phrase opens with the first bar of the phrase before as often
  (``opening_source``, a parallel period), each by how much that bar moves.

Every request is prompted with the material it refers to: the piece's opening bars (its main
theme), then the source's version of the bars it decodes if the section has a source, then
the bars just before — not only the last bars (at most 12 bars, ~600 tokens in the worst case,
so prompt and phrase fit the model's 1,024-token context). A phrase that leads into a return
also reads the return's first bars after it (fill-in-the-middle, where the checkpoint was
trained so, and ``look_ahead`` on: ``PhraseRequest.after``), so a bridge heads back to the
tune it returns to. With a ``choose`` (``cantus.melody.infill.phrase_chooser``), such a
phrase is decoded as several candidates and the one after which the model finds the
return's first bars likeliest is kept, as an edit closes a gap: left to the model, a bridge
ended in a leap into the return (30 % of those joins wider than a fourth, against 7 % of
the corpus's bar lines). Once the bars after any phrase are decided (a return, or an echo
of its own first bar), its upbeat into them is drawn again from the model's posterior given
them (``lead_in``, ``FormComposer.led_in``): decoded blind, 40 % of the joins into a
repeated bar moved by a step or less, the corpus's 56 %.

A phrase's cadence arrives on a beat drawn from where the corpus's phrases of its meter
arrive (``cantus.melody.phrase_endings``: mostly the downbeat in 3/4 and 4/4, the second beat
in four jig phrases of ten), not always on the last beat but one: one cadence rhythm for
every phrase was what most told the composed pieces from real ones. A phrase the tune goes
on after leads into the next with an upbeat as often as the corpus's phrases do after a
cadence on that beat (``PhraseRequest.upbeat``), and its cadence tone lasts as long as
theirs (``PhraseRequest.cadence_hold``): two beats or more in about half the 3/4 and 4/4
phrases that lead on, mostly one of the running eighths in a reel. Whether it rests before
the upbeat is the piece's habit, drawn once as the corpus's tunes of its style and meter
have theirs (``PhraseRequest.breath``).

Where the piece opens is the plan's, not the model's (``PhraseRequest.first_onset``, held by
the model's grammar). Left to itself the model opened three pieces in four with a pickup,
and each cadence then came a bar before its phrase was over: the plan's phrases ended on
bars 4, 8, 12… as those of a tune without one do. A plan that opens with a pickup bar
(``cantus.music.form.with_pickup``, drawn as often as the corpus's tunes of the style and
meter open with one: ``cantus.melody.openings``) has its phrases end a bar later; its
pickup bar is decoded with the phrase it leads into, its first note where the corpus's
pickups start. A plan without one opens on the downbeat. Given bars keep their own opening.

All of it is a function of the plan, the bars so far and the seed: a restarted service that
resumes after bar k composes the same bars every time it resumes there (at a phrase start,
the same as the first attempt; mid-phrase the rest of the phrase is decoded anew, seeded by
k, and still ends in the phrase's cadence).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from cantus.melody.controls import Controls
from cantus.melody.decoding import AUTHENTIC_CADENCE_STEPS, HALF_CADENCE_STEPS
from cantus.melody.openings import draw_pickup_onset
from cantus.melody.phrase_endings import (
    draw_breath,
    draw_breath_habit,
    draw_cadence_beat,
    draw_cadence_hold,
    draw_upbeat,
)
from cantus.melody.register import (
    contrasting_sections,
    draw_lift,
    mean_pitch,
    register_pitch_range,
    theme_sections,
)
from cantus.melody.sampling import SamplingParams
from cantus.melody.tokenizer import MelodyTokenizer
from cantus.music.form import PHRASE_BARS, Cadence, FormPlan, Section, Treatment
from cantus.music.notes import TICKS_PER_QUARTER, Bar, Key, Mode, Note

THEME_BARS = 4
"""Opening bars of the piece put at the front of every later prompt."""
RECENT_BARS = 4
"""Bars just before the new ones that close every prompt."""
SOURCE_LEAD_BARS = 2
"""Bars of the source before its version of the bars a varied section decodes anew."""
VARIED_ENDING_BARS = 2
"""Closing bars of a VARY section of 8 bars or more decoded anew."""
LONGER_VARIED_TAIL_SHARE = 0.27
"""Share of the shorter VARY sections (a four-bar phrase) whose last two bars are decoded
anew; the others change their cadence bar only. Of the training split's varied four-bar
returns (``cantus.eval.structure.phrase_pattern``'s ``~``, first 16 bars of 3,701 tunes),
27 % go their own way from their third bar on (bars 3 and 4 both unlike the source's), 36 %
from their cadence bar, and 38 % keep something of the source's cadence bar too, which a
cadence of its own cannot (session 28, ``docs/results/melody_realness_decomposition.md``).
With every return new in its cadence bar alone, 92 % of generated returns repeated their
source's third bar note for note, against 48 % of the corpus's; with half of every 4-bar
return new, too few bars returned (docs/results/design_measurements.md)."""

KEPT_CADENCE_SHARE = 0.52
"""Share of the VARY sections that do not decode their last two bars anew
(``LONGER_VARIED_TAIL_SHARE``) which keep their source's cadence bar too, where its cadence
tone sounds where their own cadence's would (``FormComposer.kept_closing``). Of the
corpus's varied four-bar returns 38 % keep something of the source's cadence bar, 36 % change
it alone (0.38 of the 0.73 that do not go their own way from their third bar: 0.52). With
every return's cadence bar decoded anew, the composed returns' cadence bars were 0.17 alike
their source's (``cantus.eval.structure.bar_similarity``), the held-out tunes' 0.41
(``cantus eval realness``, "Varied returns, bar by bar", session 30). A kept cadence bar may
be ornamented like the others before its closing tone, which becomes the return's own
cadence tone where the source's is not one (``FormComposer.kept_closing``)."""

CHANGED_CLOSING_STEPS = {Cadence.AUTHENTIC: 0, Cadence.HALF: 7}
"""The tone (semitones above the tonic) a kept cadence bar closes on where its source's
cadence tone is not one of its own cadence's: the tonic for an authentic cadence, the
dominant for a half. Moved to the nearest tone of the cadence's chord instead (the minor
tonic's third among them), 112 of 120 minor pieces were heard in their key against 115
with no kept cadences (session 31): a return closing on the relative major's tonic leans
its way, and a copied bar is not chosen in key as a decoded phrase is."""

MAX_CLOSING_MOVE = 4
"""The widest step (semitones) into a kept cadence bar's changed closing tone
(``FormComposer.kept_closing``): a second ending moves to its cadence tone by step or third."""

ECHO_SHARES = {0: 0.0, 1: 0.0, 2: 0.062, 3: 0.113}
"""Share of new four-bar phrases whose third bar repeats their first note for note, the
phrase then going its own way to its cadence (``FormComposer.echo_source``), by the
distinct pitches of the first bar (3: three or more; 0, a bar of rest, never). Of the
training split's new phrases (first 16 bars of its tunes, ``cantus.eval.structure``'s
phrases) 9.3 % do, the commonest way a real tune's new phrase reuses a bar: 11.3 % of those
whose first bar moves over three pitches or more, 6.2 % over two, 2.4 % of those on one
pitch. The last is left out: a bar of one pitch echoed is the hammering issue 14 began with
(an 8-bar piece of the quality gate played one pitch in 67 % of its notes with it). Left
to itself the model never echoed (0 of 359 new phrases). Of the bars of real new phrases
11.3 % repeat an earlier bar note for note, of the composed ones' 1.7 % before (session 30,
``docs/results/melody_realness_decomposition.md``)."""

PARALLEL_OPENING_SHARES = {0: 0.0, 1: 0.0, 2: 0.054, 3: 0.135}
"""Share of a strain's second and fourth new phrases that answer the phrase before by
opening with its first bar (a parallel period: the consequent starts as the antecedent did
and goes elsewhere; ``FormComposer.opening_source``), by the distinct pitches of that bar as
``ECHO_SHARES``: of the training split's second phrases 11.8 % open with the first's first
bar, of fourth phrases 8.7 % with the third's, of third phrases (a strain's start) under
1 %; 13.5 % where the bar moves over three pitches or more, 5.4 % over two, 4.8 % on one
(left out, as for the echo)."""


def bar_motion(bar: Bar) -> int:
    """The distinct pitches of ``bar``, three or more counted as 3 (``ECHO_SHARES``)."""
    return min(len({note.pitch for note in bar.notes}), 3)


LOOK_AHEAD_BARS = 2
"""Bars of a coming return a phrase reads after its gap (as ``cantus.melody.infill``)."""

QUARTER_TICKS = TICKS_PER_QUARTER
EIGHTH_TICKS = TICKS_PER_QUARTER // 2

IMPERFECT_AUTHENTIC_STEPS = {Mode.MAJOR: (0, 4), Mode.MINOR: (0, 3)}
"""An authentic cadence inside a piece may close on the tonic or its third (an imperfect
authentic cadence: the melody on the 3rd over ``I``); only the piece's last bar must close on
the tonic itself. The 5th over ``I`` was tried as well: the model took it more often than
the corpus's phrases do, and the dominant, already the melodies' most over-used tone, grew
further (240 pieces: 23.6 % of major notes against the corpus's 21.4 %)."""
SUBTONIC_STEP = 10
"""In minor a half cadence may also stop on the subtonic, the third of the natural minor's
``v`` (the harmony takes ``v`` where the melody sounds it: ``cantus.harmony.cadence``)."""


def cadence_steps(cadence: Cadence, mode: Mode, *, last: bool) -> tuple[int, ...]:
    """The tones (semitones above the section key's tonic) a phrase ending in ``cadence``
    may close on; ``last``: the piece's final cadence, on the tonic.

    The corpus's phrases close on more than the tonic and the dominant (training split, the
    4th, 8th, 12th and 16th full bars of 3,554 major and 517 minor tunes): at the 8th bar
    the tonic in 45 % of major tunes, the 5th in 18 %, the 3rd in 12 %; at the 4th and 12th
    of minor tunes the subtonic in 14-18 %. With the tonic alone at every section end,
    composed melodies held the tonic a fifth longer than real ones (22.7 % of major notes
    against 18.9 %; ``docs/results/melody_realness.md``)."""
    if cadence is Cadence.AUTHENTIC:
        return AUTHENTIC_CADENCE_STEPS if last else IMPERFECT_AUTHENTIC_STEPS[mode]
    if mode is Mode.MINOR:
        return (*HALF_CADENCE_STEPS, SUBTONIC_STEP)
    return HALF_CADENCE_STEPS


@dataclass(frozen=True)
class PhraseRequest:
    """One model request: decode ``n_bars`` bars after ``context`` under ``controls``, the
    last note on one of ``cadence_steps`` (semitones above the controls' tonic). ``after``:
    the bars that follow the new ones (an edit's gap), read by a model trained to fill in
    the middle; empty when the phrase is decoded left to right. ``first_onset``: where the
    first bar's first note starts, in grid steps (``SamplingParams.first_onset``; -1: the
    model's choice). ``cadence_beat``: the beat of the last bar the cadence arrives on
    (``SamplingParams.cadence_beat``; -1: the grammar's default). ``phrase_continues``: the
    tune goes on after the last bar (``SamplingParams.phrase_continues``); ``upbeat``: whether
    a note follows the held cadence tone then (``SamplingParams.upbeat``: 1, 0, -1 the
    model's choice), how long the cadence tone lasts (``SamplingParams.cadence_hold``) and
    whether a rest comes before the upbeat (``SamplingParams.breath``).
    ``guidance``: this request's classifier-free guidance on the key, None:
    the service's (``SamplingParams.guidance``; ``key_choice`` asks for it where no
    unguided candidate keeps the key and is like a tune). ``register_aim``: the mean pitch a
    contrasting section's phrase is chosen to sit near (``cantus.melody.register``), None
    for the theme, its returns, intros and outros; read by the choosers, not the model.
    ``pitch_range``: the pitches the phrase keeps to (``SamplingParams.pitch_range``; a
    contrasting section's window around its aim, ``register.register_pitch_range``), None: the
    service's."""

    first_bar: int
    n_bars: int
    controls: Controls
    context: tuple[Bar, ...]
    cadence_steps: tuple[int, ...]
    seed: int
    after: tuple[Bar, ...] = ()
    first_onset: int = -1
    cadence_beat: int = -1
    phrase_continues: bool = False
    upbeat: int = -1
    cadence_hold: int = -1
    breath: int = -1
    guidance: float | None = None
    register_aim: float | None = None
    pitch_range: tuple[int, int] | None = None

    def sampling(self, base: SamplingParams) -> SamplingParams:
        """``base`` (the service's settings) with this phrase's cadence, opening, whether
        the tune goes on after it, whether it leads on with an upbeat, and its guidance and
        pitch range where it has its own."""
        return dataclasses.replace(
            base,
            cadence_steps=self.cadence_steps,
            first_onset=self.first_onset,
            cadence_beat=self.cadence_beat,
            phrase_continues=self.phrase_continues,
            upbeat=self.upbeat,
            cadence_hold=self.cadence_hold,
            breath=self.breath,
            guidance=base.guidance if self.guidance is None else self.guidance,
            pitch_range=base.pitch_range if self.pitch_range is None else self.pitch_range,
        )

    def prompt(self, tokenizer: MelodyTokenizer) -> list[int]:
        """The model's prompt: controls and context, and where ``after`` is given and the
        vocabulary has the markers, ``FIM_SUF`` ``after`` ``FIM_MID`` (fill-in-the-middle);
        a checkpoint older than them continues the context alone."""
        if self.after and tokenizer.has_infill:
            return tokenizer.infill_prompt(self.controls, self.context, self.after)
        return tokenizer.prompt(self.controls, self.context)


DecodePhrase = Callable[[PhraseRequest], AsyncIterator[Bar]]
"""Streams the bars of one request as the model closes them (exactly ``n_bars``)."""
ChoosePhrase = Callable[[PhraseRequest, Sequence[Bar], Sequence[Bar]], Awaitable[list[Bar]]]
"""Decodes a request several times and returns one candidate, given the bars it leads into
(a return's first bars; empty where none are known) and the bars so far of its key area
(``FormComposer.key_area_bars``): the one that leads best into the bars after it
(``cantus.melody.infill.phrase_chooser``), or the first that keeps its key area in the key
(``cantus.melody.key_choice.key_chooser``)."""
LeadIn = Callable[[PhraseRequest, Sequence[Bar], Sequence[Bar]], Awaitable[list[Bar]]]
"""Given a request, its decoded bars and the bars they lead into, the bars with the upbeat
into those drawn again from the model's posterior (``cantus.melody.lead_in.lead_in_drawer``)."""
CandidatesInKey = Callable[[Sequence[Sequence[Bar]], Sequence[Bar], Key], list[int]]
"""Of a phrase's candidates, given the bars so far of its key area and the key, the indices
of those to choose among (``cantus.melody.key_choice.candidates_in_key``)."""


class FormComposer:
    """``async for index, bar in FormComposer(plan, controls, seed).compose(bars, decode)``.
    ``look_ahead``: a phrase that leads into a return reads its first bars
    (``known_after``; ``settings.melody_fill_in_middle``). ``choose``: such a phrase is
    chosen among candidates by how it leads into them (``settings.melody_return_candidates``);
    its bars then come all at once, when the candidates are decoded and scored.
    ``lead_on``: each continuing phrase draws whether it leads on with an upbeat from the
    corpus (``upbeat``); False leaves it to the model, as before session 16 (for
    comparisons, docs/examples/phrases). ``choose_in_key``: each decoded phrase that does not
    lead into a return is chosen among candidates, the first that keeps its key area's bars
    in their key (``cantus.melody.key_choice``, ``settings.melody_key_candidates``); its bars
    too come all at once. ``register_contrast``: a contrasting section's phrases carry a
    register aim (``PhraseRequest.register_aim``, ``cantus.melody.register``) that the
    choosers keep the nearest candidates to; False: none (as before session 24).
    ``register_window``: such a phrase is also decoded inside a window of pitches around its
    aim (``PhraseRequest.pitch_range``, ``register.register_pitch_range``); False: over the
    service's whole range, as before session 26. ``echoes``: a new phrase's third bar
    repeats its first, and an answering phrase opens with the first bar of the phrase before,
    as often as the corpus's do (``echo_source``, ``opening_source``); False: never, as before
    session 30."""

    def __init__(
        self,
        plan: FormPlan,
        controls: Controls,
        seed: int,
        *,
        look_ahead: bool = False,
        choose: ChoosePhrase | None = None,
        lead_on: bool = True,
        choose_in_key: ChoosePhrase | None = None,
        register_contrast: bool = True,
        register_window: bool = True,
        echoes: bool = True,
        lead_in: LeadIn | None = None,
    ) -> None:
        self.plan = plan
        self.echoes = echoes
        self.controls = controls
        self.seed = seed
        self.look_ahead = look_ahead
        self.choose = choose
        self.lead_on = lead_on
        self.choose_in_key = choose_in_key
        self.lead_in = lead_in
        self.contrasting = contrasting_sections(plan) if register_contrast else set()
        self.register_window = register_window
        self.theme = theme_sections(plan)

    async def compose(
        self, bars: list[Bar], decode: DecodePhrase
    ) -> AsyncIterator[tuple[int, Bar]]:
        """Append bars to ``bars`` (the piece so far) until the plan is complete, yielding
        each new bar with its index right after it is appended."""
        while len(bars) < self.plan.total_bars:
            index = len(bars)
            section = self.plan.section_at(index)
            reused = self.reused_bar(section, index, bars)
            if reused is not None:
                bars.append(reused)
                yield index, reused
                continue
            request = self.phrase_request(section, index, bars)
            end = request.first_bar + request.n_bars - 1
            leads_into = self.known_after(end, bars) if self.choose is not None else ()
            chosen: list[Bar] | None = None
            if self.choose is not None and leads_into:
                chosen = await self.choose(request, leads_into, self.key_area_bars(section, bars))
            elif self.choose_in_key is not None:
                chosen = await self.choose_in_key(request, (), self.key_area_bars(section, bars))
            if chosen is not None:
                chosen = chosen[: request.n_bars]
                if len(chosen) < request.n_bars:
                    raise RuntimeError(
                        f"the model stopped after {len(chosen)} of {request.n_bars} bars "
                        f"of the phrase at bar {request.first_bar}"
                    )
                if not request.phrase_continues:
                    chosen[-1] = hold_last_note(chosen[-1])
                elif not leads_into:
                    chosen = await self.led_in(request, chosen, bars)
                for bar in chosen:
                    bars.append(bar)
                    yield len(bars) - 1, bar
                continue
            produced = 0
            async for bar in decode(request):
                produced += 1
                if produced == request.n_bars:
                    if not request.phrase_continues:
                        bar = hold_last_note(bar)
                    else:
                        first = len(bars) - request.n_bars + 1  # the phrase's bars so far
                        phrase = [*bars[first:], bar]
                        bar = (await self.led_in(request, phrase, bars[:first]))[-1]
                bars.append(bar)
                yield len(bars) - 1, bar
                if produced == request.n_bars:
                    break
            if produced < request.n_bars:
                raise RuntimeError(
                    f"the model stopped after {produced} of {request.n_bars} bars "
                    f"of the phrase at bar {request.first_bar}"
                )

    async def led_in(
        self, request: PhraseRequest, phrase: list[Bar], bars: Sequence[Bar]
    ) -> list[Bar]:
        """``phrase`` (the request's bars, not yet in ``bars``), with its upbeat drawn again
        (``lead_in``) where the bars after it are decided once it is (``known_after``): a
        return to the phrase's own first bar (the second A of an AABA), or a new phrase's
        echo. Before, such an upbeat was decoded blind to what it led into."""
        if self.lead_in is None:
            return phrase
        after = self.known_after(request.first_bar + len(phrase) - 1, [*bars, *phrase])
        return list(await self.lead_in(request, phrase, after)) if after else phrase

    # --- what each bar is ---------------------------------------------------------------------

    def reused_bar(self, section: Section, index: int, bars: Sequence[Bar]) -> Bar | None:
        """The bar copied (or ornamented) from the section's source, or None if this bar
        is decoded."""
        copied = self.copied_bar(section, index, bars)
        if copied is None:
            return None
        original, source_index = copied
        if source_index == 0:
            original = return_to_opening(original, bars[index - 1] if index else None)
        if section.treatment is not Treatment.VARY:
            return original  # a repeat, or a new phrase's echo of its first bar
        rng = random.Random(self.seed * 1_000_003 + index)
        closing = self.kept_closing(section, bars) if index == section.end_bar - 1 else None
        if closing is None:
            return ornament(original, section.key, rng)
        # A kept cadence bar: ornamented before its cadence tone, which becomes the section's
        # cadence's; always where the return would otherwise repeat its source note for note
        # (a varied return varies). The piece's end drops the upbeat and holds its tone.
        held = self.cadence_tone(index, original)
        assert held is not None  # kept_closing found it
        tone = original.notes[held]
        upbeat = original.notes[held + 1 :]
        same_so_far = closing == tone.pitch and all(
            bars[i] == copied[0]
            for i in range(section.first_bar, index)
            if (copied := self.copied_bar(section, i, bars)) is not None
        )
        closed = dataclasses.replace(tone, pitch=closing)
        before = Bar(original.meter, original.notes[:held])
        varied = ornament(before, section.key, rng, always=same_so_far)
        if index == self.plan.total_bars - 1:
            return hold_last_note(Bar(original.meter, (*varied.notes, closed)))
        kept = Bar(original.meter, (*varied.notes, closed, *upbeat))
        if same_so_far and varied == before:  # a cadence on the downbeat: vary its upbeat
            whole = ornament(kept, section.key, rng, always=True)
            kept = whole if closed in whole.notes else kept
        return kept

    def copied_bar(
        self, section: Section, index: int, bars: Sequence[Bar]
    ) -> tuple[Bar, int] | None:
        """The source's bar that bar ``index`` returns to, moved to the section's key area,
        and its index; None if the bar is decoded (a new section, a return in the other
        mode, the decoded ending of a varied one) or its source is not composed yet."""
        echo = self.echo_source(section, index, bars)
        if echo is None:
            echo = self.opening_source(section, index, bars)
        if echo is not None:
            return (bars[echo], echo) if echo < len(bars) else None
        if section.source is None or section.treatment is Treatment.NEW:
            return None
        source = self.plan.sections[section.source]
        if source.key.mode is not section.key.mode:
            return None  # a return in the relative key: a transposed copy would change mode
        if (
            section.treatment is Treatment.VARY
            and index >= self.varied_from(section)
            and not self.keeps_cadence(section, bars)
        ):
            return None
        source_index = source.first_bar + index - section.first_bar
        if source_index >= len(bars):
            return None
        return transpose_bar(bars[source_index], key_shift(source.key, section.key)), source_index

    def key_area_bars(self, section: Section, bars: Sequence[Bar]) -> list[Bar]:
        """The bars so far of the sections in ``section``'s key area (what a phrase chosen
        in key is heard with)."""
        return [bar for i, bar in enumerate(bars) if self.plan.section_at(i).key == section.key]

    def known_after(self, end: int, bars: Sequence[Bar]) -> tuple[Bar, ...]:
        """Up to ``LOOK_AHEAD_BARS`` bars after bar ``end`` that are already decided: the
        start of a return (copied from its source, unornamented). A phrase that leads into
        a return is decoded knowing where it goes (``PhraseRequest.after``)."""
        after: list[Bar] = []
        index = end + 1
        while index < self.plan.total_bars and len(after) < LOOK_AHEAD_BARS:
            copied = self.copied_bar(self.plan.section_at(index), index, bars)
            if copied is None:
                break
            after.append(copied[0])
            index += 1
        return tuple(after)

    def echo_source(self, section: Section, index: int, bars: Sequence[Bar]) -> int | None:
        """The bar that bar ``index`` repeats note for note where it is the third bar of a
        new four-bar phrase that echoes its first (``ECHO_SHARES`` by that bar's motion, one
        draw per phrase by the seed and the phrase's first bar alone, so a restart draws the
        same); None otherwise. Before the first bar is composed (``bars`` shorter), whether
        the phrase may echo, at the largest share: its first two bars are then decoded as a
        request of their own, and the third is decoded with the fourth if it does not."""
        first = index - 2
        if not self._reuses_bars(section, first):
            return None
        draw = random.Random(self.seed * 1_000_003 + 800_011 * (first + 1) + 4).random()
        share = (
            ECHO_SHARES[bar_motion(bars[first])] if first < len(bars) else max(ECHO_SHARES.values())
        )
        return first if draw < share else None

    def _reuses_bars(self, section: Section, first: int) -> bool:
        """Whether a phrase starting at bar ``first`` may echo or answer with a bar: echoes
        on, a new section, and a four-bar phrase of it starting there."""
        if not self.echoes or section.treatment is not Treatment.NEW:
            return False
        if first < section.first_bar or (first - section.first_bar) % PHRASE_BARS:
            return False
        return any(end == first + PHRASE_BARS - 1 for end, _ in section.phrase_ends())

    def opening_source(self, section: Section, index: int, bars: Sequence[Bar]) -> int | None:
        """The first bar of the phrase before where bar ``index`` opens a new four-bar phrase
        that answers it (``PARALLEL_OPENING_SHARES`` of the second and fourth phrases of a
        strain, by that bar's motion, drawn per phrase by the seed and its first bar alone);
        None otherwise, or while the phrase before is not composed."""
        if not self._reuses_bars(section, index):
            return None
        previous = index - PHRASE_BARS
        number = previous - self.plan.pickup_bars
        if previous < self.plan.pickup_bars or (number // PHRASE_BARS) % 2:
            return None  # the first phrase, or one that starts a strain
        if previous >= len(bars):
            return None
        draw = random.Random(self.seed * 1_000_003 + 800_011 * (index + 1) + 6).random()
        return previous if draw < PARALLEL_OPENING_SHARES[bar_motion(bars[previous])] else None

    def varied_from(self, section: Section) -> int:
        """First bar of a VARY section that is decoded anew: its last ``VARIED_ENDING_BARS``
        in a long section; in a shorter one its cadence bar, or as often as the corpus's
        returns (``LONGER_VARIED_TAIL_SHARE``) its last two, drawn per section by the seed."""
        if section.bars >= 8:
            return section.end_bar - VARIED_ENDING_BARS
        rng = random.Random(self.seed * 1_000_003 + 300_007 * (section.first_bar + 1) + 5)
        longer = section.bars >= 3 and rng.random() < LONGER_VARIED_TAIL_SHARE
        return section.end_bar - (2 if longer else 1)

    def keeps_cadence(self, section: Section, bars: Sequence[Bar]) -> bool:
        """Whether a VARY section keeps its source's closing bars (those ``varied_from``
        would decode) instead of decoding a cadence of its own (``kept_closing``)."""
        return self.kept_closing(section, bars) is not None

    def kept_closing(self, section: Section, bars: Sequence[Bar]) -> int | None:
        """The pitch a VARY section that keeps its source's closing bars closes on, or None
        where it decodes them anew. Kept as often as the corpus's returns keep their cadence
        bar (``KEPT_CADENCE_SHARE``, drawn per section by the seed; never where its last two
        bars go their own way), and only where the source's cadence bar, moved to the
        section's key, has a cadence tone where the section's own cadence would have it
        (``cadence_tone``: sounding through the beat drawn for it or starting on it; an upbeat
        into the next phrase may follow): that tone where the section's cadence may close on it
        (``cadence_steps``), else the nearest tonic (authentic) or dominant (half;
        ``CHANGED_CLOSING_STEPS``), at most a major third from the note before
        (``MAX_CLOSING_MOVE``) and a fifth from the upbeat after, as a second ending changes
        its cadence tone (a half cadence's D, an authentic cadence's C)."""
        if section.treatment is not Treatment.VARY or section.source is None:
            return None
        if section.bars < 8 and self.varied_from(section) < section.end_bar - 1:
            return None
        source = self.plan.sections[section.source]
        source_cadence = source.first_bar + section.bars - 1
        if source.key.mode is not section.key.mode or source_cadence >= len(bars):
            return None
        rng = random.Random(self.seed * 1_000_003 + 900_001 * (section.first_bar + 1) + 7)
        if rng.random() >= KEPT_CADENCE_SHARE:
            return None
        cadence_bar = bars[source_cadence]
        held = self.cadence_tone(section.end_bar - 1, cadence_bar)
        if held is None:
            return None
        shift = key_shift(source.key, section.key)
        closing = cadence_bar.notes[held].pitch + shift
        steps = cadence_steps(
            section.cadence, section.key.mode, last=section.end_bar >= self.plan.total_bars
        )
        if (closing - section.key.tonic) % 12 not in steps:  # a changed tone: the cadence's root
            steps = (CHANGED_CLOSING_STEPS[section.cadence],)
        candidates = [
            pitch
            for pitch in range(closing - 7, closing + 8)
            if (pitch - section.key.tonic) % 12 in steps
        ]
        # by step or third from the note before (in the bar before for a cadence on the
        # downbeat), and no wider than a fifth into an upbeat
        previous = cadence_bar.notes[held - 1] if held else None
        if previous is None and source_cadence > 0 and bars[source_cadence - 1].notes:
            previous = bars[source_cadence - 1].notes[-1]
        neighbours = [(note.pitch + shift, MAX_CLOSING_MOVE) for note in (previous,) if note]
        if held + 1 < len(cadence_bar.notes):
            neighbours.append((cadence_bar.notes[held + 1].pitch + shift, 7))
        candidates = [
            p for p in candidates if all(abs(p - other) <= limit for other, limit in neighbours)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda pitch: (abs(pitch - closing), pitch))

    def cadence_tone(self, end: int, bar: Bar) -> int | None:
        """Index in ``bar`` of the note that would be the cadence tone of the phrase ending
        at bar ``end``: the one that has arrived by the beat drawn for that cadence
        (``cadence_beat``) and sounds through it, as the grammar holds a decoded cadence
        tone, or else the one that starts on that beat, as a shorter cadence tone does
        (``cadence_hold``: a reel's phrase running on through its cadence); notes after it
        are the upbeat into the next phrase. None if no note does, or the meter has no
        drawn beat."""
        drawn = self.cadence_beat(end)
        if drawn < 0:
            return None
        meter = bar.meter
        start = min(drawn, meter.bar_ticks // meter.beat_ticks - 1) * meter.beat_ticks
        through = (
            i
            for i, note in enumerate(bar.notes)
            if note.onset <= start and note.onset + note.duration >= start + meter.beat_ticks
        )
        on_the_beat = (i for i, note in enumerate(bar.notes) if note.onset == start)
        return next(through, next(on_the_beat, None))

    def cadence_beat(self, end: int) -> int:
        """The beat on which the cadence of the phrase ending at bar ``end`` arrives
        (``SamplingParams.cadence_beat``): drawn from the corpus's shares for the meter, and
        a function of the seed and ``end`` alone, so a request resumed mid-phrase asks the
        same."""
        rng = random.Random(self.seed * 1_000_003 + 500_009 * (end + 1))
        return draw_cadence_beat(self.controls.meter, rng)

    def upbeat(self, end: int, cadence_beat: int) -> int:
        """Whether the phrase ending at bar ``end`` leads into the next with an upbeat
        (``SamplingParams.upbeat``: 1 or 0), as often as the corpus's phrases do after a
        cadence on ``cadence_beat``; -1 (the model's choice) where the corpus has too few
        such phrases. Seeded by the seed and ``end`` alone, as ``cadence_beat``."""
        rng = random.Random(self.seed * 1_000_003 + 700_001 * (end + 1) + 1)
        drawn = draw_upbeat(self.controls.meter, cadence_beat, rng)
        return -1 if drawn is None else int(drawn)

    def cadence_hold(self, end: int, cadence_beat: int, cadence: Cadence, upbeat: int) -> int:
        """How long the cadence tone of the phrase ending at bar ``end`` lasts
        (``SamplingParams.cadence_hold``), as the corpus's phrase-end bars in the meter with a
        cadence on ``cadence_beat`` that lead on (``upbeat`` 1) or not (0) do: a half cadence
        is read as the corpus's mid-period phrase ends (the 4th bar), an authentic one as its
        period ends (the 8th). Seeded by the seed and ``end`` alone, as ``cadence_beat``."""
        rng = random.Random(self.seed * 1_000_003 + 900_007 * (end + 1) + 2)
        closes_period = cadence is Cadence.AUTHENTIC
        meter = self.controls.meter
        return draw_cadence_hold(meter, cadence_beat, closes_period, upbeat == 1, rng)

    def breath(self, end: int, hold: int) -> int:
        """Whether the phrase ending at bar ``end``, which leads on after a cadence tone of
        ``hold``, rests before its upbeat (``SamplingParams.breath``): by the piece's breath
        habit, drawn once from its seed as the corpus's tunes of its style and meter have
        theirs, then per phrase as often as the corpus's phrases in tunes of that habit do.
        Seeded by the seed and ``end`` alone, as ``cadence_beat``."""
        habit = draw_breath_habit(
            self.controls.style.value,
            self.controls.meter,
            random.Random(self.seed * 1_000_003 + 999_983),
        )
        rng = random.Random(self.seed * 1_000_003 + 1_100_009 * (end + 1) + 3)
        return draw_breath(habit, self.controls.meter, hold, rng)

    def first_onset(self) -> int:
        """Where the piece's first note starts (``SamplingParams.first_onset``): on the
        downbeat, or after a plan's pickup bar's rest, where the corpus's pickups in the meter
        start (seeded by the seed alone)."""
        if not self.plan.pickup_bars:
            return 0
        return draw_pickup_onset(self.controls.meter, random.Random(self.seed * 1_000_003 + 3))

    def phrase_request(self, section: Section, index: int, bars: Sequence[Bar]) -> PhraseRequest:
        """The request that decodes from ``index`` to the end of its phrase (from a pickup
        bar, to the end of the phrase it leads into)."""
        if section.treatment is Treatment.PICKUP:
            section = self.plan.sections[self.plan.section_index(index) + 1]
        end, cadence = next((e, c) for e, c in section.phrase_ends() if e >= index)
        echo = next(
            (
                bar
                for bar in range(index + 1, end + 1)
                if self.echo_source(section, bar, bars) is not None
            ),
            None,
        )
        controls = dataclasses.replace(self.controls, key=section.key, energy=section.energy)
        aim = self.register_aim(index, bars)
        steps: tuple[int, ...]
        if echo is not None:
            # the bars before the echo: no cadence, the phrase goes on
            end, steps, cadence_beat, continues, upbeat = echo - 1, (), -1, True, -1
            hold = breath = -1
        else:
            cadence_beat = self.cadence_beat(end)
            continues = end < self.plan.total_bars - 1
            steps = cadence_steps(cadence, section.key.mode, last=not continues)
            upbeat = self.upbeat(end, cadence_beat) if continues and self.lead_on else -1
            hold = self.cadence_hold(end, cadence_beat, cadence, upbeat) if upbeat >= 0 else -1
            breath = self.breath(end, hold) if upbeat == 1 and hold >= 0 else -1
        return PhraseRequest(
            first_bar=index,
            n_bars=end - index + 1,
            controls=controls,
            context=tuple(self.context(section, index, end - index + 1, bars)),
            cadence_steps=steps,
            seed=self.seed + index,
            after=self.known_after(end, bars) if self.look_ahead else (),
            first_onset=self.first_onset() if index == 0 else -1,
            cadence_beat=cadence_beat,
            phrase_continues=continues,
            upbeat=upbeat,
            cadence_hold=hold,
            breath=breath,
            register_aim=aim,
            pitch_range=(
                register_pitch_range(aim) if aim is not None and self.register_window else None
            ),
        )

    def register_aim(self, index: int, bars: Sequence[Bar]) -> float | None:
        """The mean pitch a phrase at ``index`` of a contrasting section is chosen near: the
        theme's bars so far plus a lift drawn from the corpus's second strains, one per
        section (seeded by the seed and the section's first bar alone, so a restart draws the
        same); None outside contrasting sections or before any theme bar."""
        section_index = self.plan.section_index(index)
        if section_index not in self.contrasting:
            return None
        section = self.plan.sections[section_index]
        theme = [self.plan.sections[number] for number in sorted(self.theme)]
        theme_bars = [
            bars[bar]
            for part in theme
            for bar in range(part.first_bar, min(part.end_bar, section.first_bar))
        ]
        theme_pitch = mean_pitch(theme_bars)
        if theme_pitch is None:
            return None
        rng = random.Random(self.seed * 1_000_003 + 900_001 * (section.first_bar + 1) + 2)
        return theme_pitch + draw_lift(rng)

    def context(self, section: Section, index: int, n_bars: int, bars: Sequence[Bar]) -> list[Bar]:
        """The bars a request is prompted with, each once and in piece order so the model
        reads them as one tune: the theme, the source's version of the bars to decode (with
        ``SOURCE_LEAD_BARS`` before them) and the recent bars."""
        chosen: set[int] = set(range(min(self.plan.pickup_bars + THEME_BARS, index)))
        if section.source is not None:
            source = self.plan.sections[section.source]
            offset = index - section.first_bar
            start = source.first_bar + max(0, offset - SOURCE_LEAD_BARS)
            stop = source.first_bar + min(source.bars, offset + n_bars)
            chosen.update(range(start, min(stop, index)))
        chosen.update(range(max(0, index - RECENT_BARS), index))
        return [bars[i] for i in sorted(chosen)]


# --- ornaments -------------------------------------------------------------------------------


def return_to_opening(bar: Bar, previous: Bar | None) -> Bar:
    """A copy of the piece's first bar for a return of the opening, after ``previous``.

    The corpus writes a pickup as a bar of rest ending in the upbeat. Copied as it is, a
    return fell silent for most of a bar in mid-piece (AABA: three beats of rest at each
    A); with the rest folded into the upbeat, the upbeat became a note held from the
    downbeat, which no real tune does. A real tune's strain ends with the cadence note held
    and then the upbeat, so the return sounds the previous bar's last pitch through the
    rest (struck again on the downbeat: the representation has no ties) and then plays
    the upbeat. Without a previous note the rest is folded into the first note."""
    if not bar.notes or bar.notes[0].onset == 0:
        return bar
    first = bar.notes[0]
    if previous is not None and previous.notes:
        held = previous.notes[-1]
        return Bar(bar.meter, (Note(0, held.pitch, first.onset, held.velocity), *bar.notes))
    opening = dataclasses.replace(first, onset=0, duration=first.onset + first.duration)
    return Bar(bar.meter, (opening, *bar.notes[1:]))


def hold_last_note(bar: Bar) -> Bar:
    """The piece's last bar with its cadence note held to the bar line, leaving at most a
    beat's breath. The model closes a request with ``EOS``, which it learned as the end of
    a tune, and often played the cadence note short, the rest of the bar silent. (A phrase
    the tune goes on after ends where the model would draw the next bar line, its cadence
    tone held through the beat before the last by the grammar: its breath is the model's.)"""
    if not bar.notes:
        return bar
    last = bar.notes[-1]
    if bar.meter.bar_ticks - (last.onset + last.duration) <= bar.meter.beat_ticks:
        return bar
    held = dataclasses.replace(last, duration=bar.meter.bar_ticks - last.onset)
    return Bar(bar.meter, (*bar.notes[:-1], held))


def key_shift(source: Key, target: Key) -> int:
    """The smallest transposition (-5..+6 semitones) from ``source``'s tonic to ``target``'s:
    a return in another key area (an A' in the dominant) is its source moved there."""
    return (target.tonic - source.tonic + 5) % 12 - 5


def transpose_bar(bar: Bar, semitones: int) -> Bar:
    if not semitones:
        return bar
    return Bar(
        bar.meter,
        tuple(dataclasses.replace(n, pitch=n.pitch + semitones) for n in bar.notes),
    )


def scale_pitch_classes(key: Key) -> set[int]:
    steps = (0, 2, 4, 5, 7, 9, 11) if key.mode is Mode.MAJOR else (0, 2, 3, 5, 7, 8, 10)
    return {(key.tonic + step) % 12 for step in steps}


VARIED_BAR_SHARE = 0.35
"""Share of a varied return's copied bars that change a note or two (``ornament``). Of the
training split's 3,701 varied four-bar returns, 31 % change their first bar and 34 % their
second, against the phrase they return to: one pitch (3-6 % of bars), a note added (5-7 %) or
left out (3-6 %), the rhythm alone (3 %), or more (session 30, ``docs/results/
melody_realness_decomposition.md``). Ornamented half the time where a passing tone or a
dotted pair fitted, which few bars of quick notes offer, the composed returns' first two
bars were 0.97-0.98 alike their source's (``cantus.eval.structure.bar_similarity``), the
held-out tunes' 0.82-0.83 (``cantus eval realness``, "Varied returns, bar by bar")."""

ORNAMENT_WEIGHTS = {"neighbour": 3.0, "passing": 2.0, "split": 2.0, "merge": 2.0, "dotted": 1.0}
"""How often each ornament is drawn where it fits, after the corpus's mix: a changed pitch,
a note added (a passing tone, a long note split), one left out (merged), a rhythm changed."""


def ornament(bar: Bar, key: Key, rng: random.Random, *, always: bool = False) -> Bar:
    """The bar with one light change, as a returning strain varies its source
    (``VARIED_BAR_SHARE`` of bars, every bar with ``always``; unchanged otherwise or where
    none fits), drawn among those that fit by ``ORNAMENT_WEIGHTS``:

    * ``neighbour``: a note after the first moves to the next scale tone up or down, where it
      still moves by step or third from the notes around it;
    * ``passing``: a passing tone fills a third (a quarter note or longer gives its second
      half to the scale tone between);
    * ``split``: a note of one or more whole quarters, after the first, gives its second half
      to the scale tone a step towards the next note;
    * ``merge``: a note that repeats the one before it is held instead of struck again;
    * ``dotted``: a dotted rhythm on two quarter notes.

    The bar's first note (its onset and pitch) and its span stay as they were, and no change
    makes notes shorter than an eighth."""
    if rng.random() >= VARIED_BAR_SHARE and not always:
        return bar
    notes = list(bar.notes)
    scale = scale_pitch_classes(key)
    fitting = {
        name: varied
        for name, varied in (
            ("neighbour", _neighbour(notes, scale, rng)),
            ("passing", _passing_tone(notes, scale)),
            ("split", _split(notes, scale)),
            ("merge", _merge(notes)),
            ("dotted", _dotted(notes)),
        )
        if varied is not None
    }
    if not fitting:
        return bar
    names = sorted(fitting)
    chosen = rng.choices(names, weights=[ORNAMENT_WEIGHTS[n] for n in names])[0]
    return Bar(bar.meter, tuple(fitting[chosen]))


def _scale_step(pitch: int, scale: set[int], direction: int) -> int:
    """The next scale tone from ``pitch`` in ``direction`` (+1 up, -1 down)."""
    step = pitch + direction
    while step % 12 not in scale:
        step += direction
    return step


def _neighbour(notes: list[Note], scale: set[int], rng: random.Random) -> list[Note] | None:
    options = []
    for i in range(1, len(notes)):
        previous, note = notes[i - 1].pitch, notes[i].pitch
        following = notes[i + 1].pitch if i + 1 < len(notes) else None
        for direction in (1, -1):
            moved = _scale_step(note, scale, direction)
            if moved in (previous, following) or abs(moved - previous) > 4:
                continue
            if following is not None and abs(following - moved) > 4:
                continue
            options.append((i, moved))
    if not options:
        return None
    i, moved = rng.choice(options)
    return [*notes[:i], dataclasses.replace(notes[i], pitch=moved), *notes[i + 1 :]]


def _split(notes: list[Note], scale: set[int]) -> list[Note] | None:
    for i in range(1, len(notes) - 1):
        note, following = notes[i], notes[i + 1]
        if note.duration < QUARTER_TICKS or note.duration % (2 * EIGHTH_TICKS):
            continue
        if note.onset + note.duration != following.onset or following.pitch == note.pitch:
            continue
        towards = _scale_step(note.pitch, scale, 1 if following.pitch > note.pitch else -1)
        if towards == following.pitch:
            continue  # a repeated note into the next: not a split the corpus hears
        half = note.duration // 2
        return [
            *notes[:i],
            dataclasses.replace(note, duration=half),
            Note(note.onset + half, towards, half, note.velocity),
            *notes[i + 1 :],
        ]
    return None


def _merge(notes: list[Note]) -> list[Note] | None:
    for i in range(1, len(notes)):
        first, second = notes[i - 1], notes[i]
        if first.pitch == second.pitch and first.onset + first.duration == second.onset:
            held = dataclasses.replace(first, duration=first.duration + second.duration)
            return [*notes[: i - 1], held, *notes[i + 1 :]]
    return None


def _passing_tone(notes: list[Note], scale: set[int]) -> list[Note] | None:
    for i in range(len(notes) - 1):
        first, second = notes[i], notes[i + 1]
        leap = second.pitch - first.pitch
        if abs(leap) not in (3, 4) or first.onset + first.duration != second.onset:
            continue
        if first.duration < QUARTER_TICKS or first.duration % QUARTER_TICKS:
            continue  # an ornament made of sixteenths is not the corpus's: halve quarters up
        step = 1 if leap > 0 else -1
        between = [p for p in range(first.pitch + step, second.pitch, step) if p % 12 in scale]
        if len(between) != 1:
            continue
        half = first.duration // 2
        return [
            *notes[:i],
            dataclasses.replace(first, duration=half),
            Note(first.onset + half, between[0], half, first.velocity),
            *notes[i + 1 :],
        ]
    return None


def _dotted(notes: list[Note]) -> list[Note] | None:
    for i in range(len(notes) - 1):
        first, second = notes[i], notes[i + 1]
        if (
            first.duration == second.duration == QUARTER_TICKS
            and first.onset + first.duration == second.onset
            and first.pitch != second.pitch
        ):
            longer = QUARTER_TICKS + EIGHTH_TICKS
            return [
                *notes[:i],
                dataclasses.replace(first, duration=longer),
                dataclasses.replace(second, onset=first.onset + longer, duration=EIGHTH_TICKS),
                *notes[i + 2 :],
            ]
    return None


async def collect(composer: FormComposer, bars: list[Bar], decode: DecodePhrase) -> list[Bar]:
    """Compose to the end (for tools and tests)."""
    async for _ in composer.compose(bars, decode):
        pass
    return bars
