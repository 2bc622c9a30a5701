"""Palettes: the sound of a piece, chosen apart from its style (the melody model's idiom).

A palette names the General MIDI instrument of every part the arrangement writes
(``melody``, ``chords``, ``bass``, ``pad`` and ``colour``), the percussion (a drum kit, a
bodhrán-like frame drum from hand-drum keys, or none), the accompaniment pattern of its
stated sections and of its contrasting ones, and how loud it plays. The form plan decides
which parts sound in each section (``cantus.render.arrangement``): the ``colour`` part is
the contrasting section's own instrument (a bridge in another colour), the ``pad`` the
sustained wash of an intro, an outro and the last return.

A request may name a palette (``ComposeRequest.palette``); without one the piece gets
``default_palette(style, mood)``: a style's band for lively moods, a calm piano, strings
or harp palette for quiet ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from cantus.music.styles import MOOD_ENERGY, Energy, Style

KIT, BODHRAN, NO_PERCUSSION = "kit", "bodhran", "none"
"""Percussion of a palette: the General MIDI kit, a frame drum on hand-drum keys, none."""
BLOCK, ARPEGGIO, STRUM, WALTZ, ALBERTI, SUSTAIN, BALLAD = (
    "block",
    "arpeggio",
    "strum",
    "waltz",
    "alberti",
    "sustain",
    "ballad",
)
"""Accompaniment patterns (``cantus.render.patterns``)."""


@dataclass(frozen=True)
class Palette:
    """One sound of the band. Programs are General MIDI (0-based). ``melody_high``: the
    melody's instrument at high energy instead of ``melody`` (None: the same).
    ``accompaniment``: the chords' pattern in stated sections; ``contrast``: the colour
    part's pattern in contrasting ones. ``dynamics`` scales every velocity (a lullaby
    plays softer); ``melody_scale`` and ``accompaniment_scale`` balance the tune against
    the rest (sustained accompaniments such as an organ or a string bed fill the tune's
    band with their overtones, so they play softer and the tune louder: measured by the
    melody margin of ``cantus eval arrangement``). ``level_contrast`` scales how much
    louder its fuller sections are planned to sound than its thin ones (what the
    streaming master keeps; ``cantus.render.arrangement.section_levels_db``). ``pedal``:
    broken chords ring until the chord changes (a piano's sustain pedal). ``legato``: the
    tune is bowed, sung or breathed in one line, each note held into the next, whatever
    the style's articulation (``cantus.render.arrangement.articulated``)."""

    name: str
    summary: str
    melody: int
    chords: int
    bass: int
    pad: int
    colour: int
    percussion: str = NO_PERCUSSION
    accompaniment: str = BLOCK
    contrast: str = ARPEGGIO
    melody_high: int | None = None
    dynamics: float = 1.0
    melody_scale: float = 1.0
    accompaniment_scale: float = 1.0
    level_contrast: float = 1.0
    pedal: bool = False
    legato: bool = False

    def programs(self, energy: Energy) -> dict[str, int]:
        """Program of each pitched part at ``energy``."""
        melody = self.melody_high if energy is Energy.HIGH and self.melody_high else self.melody
        return {
            "melody": melody,
            "chords": self.chords,
            "bass": self.bass,
            "pad": self.pad,
            "colour": self.colour,
        }

    def programs_all(self) -> set[int]:
        """Every pitched program the palette plays, at any energy."""
        programs = set(self.programs(Energy.LOW).values())
        return programs | set(self.programs(Energy.HIGH).values())

    @property
    def has_drums(self) -> bool:
        return self.percussion != NO_PERCUSSION


PALETTES: dict[str, Palette] = {
    p.name: p
    for p in (
        Palette(
            "folk",
            "flute (accordion when lively), nylon guitar, acoustic bass, strings, accordion "
            "for the bridge, drum kit",
            melody=73,
            chords=24,
            bass=32,
            pad=48,
            colour=21,
            percussion=KIT,
            accompaniment=BLOCK,
            contrast=ARPEGGIO,
            melody_high=21,
        ),
        Palette(
            "celtic",
            "fiddle (tin whistle when lively), steel guitar (strummed when lively), acoustic "
            "bass, accordion, harp for the bridge, bodhrán-like frame drum",
            melody=40,
            chords=25,
            bass=32,
            pad=21,
            colour=46,
            percussion=BODHRAN,
            accompaniment=BLOCK,
            contrast=ARPEGGIO,
            melody_high=78,
        ),
        Palette(
            "chorale",
            "choir, church organ (with pedal), strings take the accompaniment in contrasting "
            "sections",
            melody=52,
            chords=19,
            bass=19,
            pad=48,
            colour=48,
            accompaniment=BLOCK,
            contrast=BLOCK,
            melody_scale=1.1,
            accompaniment_scale=0.8,
            legato=True,
        ),
        Palette(
            "piano",
            "piano solo: the tune in the right hand, chords and bass in the left",
            melody=0,
            chords=0,
            bass=0,
            pad=0,
            colour=0,
            accompaniment=ARPEGGIO,
            contrast=ALBERTI,
            melody_scale=1.1,
            accompaniment_scale=0.8,
            level_contrast=0.5,
            pedal=True,
        ),
        Palette(
            "piano-strings",
            "piano carrying the tune over broken chords, strings pad, cello bass, strings "
            "take the bridge",
            melody=0,
            chords=0,
            bass=42,
            pad=49,
            colour=48,
            accompaniment=ARPEGGIO,
            contrast=SUSTAIN,
            melody_scale=1.2,
            accompaniment_scale=0.65,
            level_contrast=0.6,
            pedal=True,
            legato=True,
        ),
        Palette(
            "strings",
            "violin, string ensemble, cello, slow strings, pizzicato in the bridge",
            melody=40,
            chords=48,
            bass=42,
            pad=49,
            colour=45,
            accompaniment=SUSTAIN,
            contrast=ARPEGGIO,
            melody_scale=1.1,
            accompaniment_scale=0.85,
            legato=True,
        ),
        Palette(
            "harp-flute",
            "flute over harp, cello bass, strings pad, cello chords in the bridge",
            melody=73,
            chords=46,
            bass=42,
            pad=48,
            colour=42,
            accompaniment=ARPEGGIO,
            contrast=SUSTAIN,
            legato=True,
        ),
        Palette(
            "ambient",
            "soft piano over a warm pad and cello, a choir pad, vibraphone in the bridge",
            melody=0,
            chords=89,
            bass=42,
            pad=91,
            colour=11,
            accompaniment=SUSTAIN,
            contrast=SUSTAIN,
            dynamics=0.85,
            melody_scale=1.15,
            accompaniment_scale=0.8,
            legato=True,
        ),
        Palette(
            "lullaby",
            "music box over harp, cello bass, warm pad, celesta in the bridge; soft",
            melody=10,
            chords=46,
            bass=42,
            pad=89,
            colour=8,
            accompaniment=ARPEGGIO,
            contrast=ARPEGGIO,
            dynamics=0.75,
            legato=True,
        ),
        Palette(
            "therapy",
            "calm pan flute over slow strings and cello, a warm pad, nylon guitar in the bridge; "
            "no drums",
            melody=75,
            chords=49,
            bass=42,
            pad=89,
            colour=24,
            accompaniment=SUSTAIN,
            contrast=ARPEGGIO,
            dynamics=0.8,
            legato=True,
        ),
    )
}
"""Every palette by name."""

STYLE_BANDS = {Style.FOLK: "folk", Style.CELTIC: "celtic", Style.CHORALE: "chorale"}
"""Each style's own band: the palette of lively moods (and of every chorale)."""

QUIET_PALETTES: dict[tuple[Style, str], str] = {
    (Style.FOLK, "calm"): "piano-strings",
    (Style.FOLK, "tender"): "harp-flute",
    (Style.FOLK, "sad"): "piano",
    (Style.FOLK, "dreamy"): "ambient",
    (Style.CELTIC, "calm"): "harp-flute",
    (Style.CELTIC, "tender"): "harp-flute",
    (Style.CELTIC, "sad"): "strings",
    (Style.CELTIC, "dreamy"): "ambient",
}
"""Palettes of the quiet (low-energy) moods per style; chorales keep choir and organ."""


class PaletteError(ValueError):
    """An unknown palette name."""


def palette_names() -> list[str]:
    return list(PALETTES)


def default_palette(style: Style, mood: str) -> str:
    """The palette a request without one gets: ``QUIET_PALETTES`` for a quiet mood, else
    the style's band (``STYLE_BANDS``)."""
    if MOOD_ENERGY.get(mood) is Energy.LOW and (style, mood) in QUIET_PALETTES:
        return QUIET_PALETTES[(style, mood)]
    return STYLE_BANDS[style]


def spec_palette(style: Style, mood: str, name: str) -> Palette:
    """The palette of a piece spec: ``name``, or for a spec from before palettes (empty)
    the default of its style and mood."""
    return get_palette(name or default_palette(style, mood))


def get_palette(name: str) -> Palette:
    """The palette called ``name``; ``PaletteError`` naming the known ones otherwise."""
    try:
        return PALETTES[name]
    except KeyError:
        known = ", ".join(PALETTES)
        raise PaletteError(f"unknown palette {name!r} (known: {known})") from None
