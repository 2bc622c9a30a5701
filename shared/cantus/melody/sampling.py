"""How one melody request is sampled: the settings every layer passes along unchanged.

``SamplingParams`` is the one definition, torch-free, from the melody service and the tools
through the Triton client, the tensors on the wire (``WIRE_TENSORS``) and the serving model's
parser, to the decode engine, the grammar and the token sampler. Every value is checked
here, once: a bad one raises ``SamplingError`` naming the field, which the Triton parser
reports under the tensor's name.

``served_sampling`` is what the melody service asks of the model for a phrase, so the
service and the in-process composer that evaluations use cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cantus.melody.tokenizer import MAX_BAR_STEPS

if TYPE_CHECKING:
    from cantus.settings import Settings

MAX_TONAL_EMPHASIS = 4.0
"""Largest ``tonal_emphasis`` (nats): beyond it melodies collapse onto the tonic triad."""
MAX_GUIDANCE = 4.0
"""Largest classifier-free guidance scale a request may ask for (1: none)."""
MAX_TEMPERATURE = 5.0
DEFAULT_PITCH_RANGE = (48, 88)
"""Pitches generated melodies may use unless a request says otherwise (MIDI, inclusive)."""
DEFAULT_MAX_NOTES_PER_BAR = 16


class SamplingError(ValueError):
    """A sampling setting out of range; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class SamplingParams:
    """How the tokens of one request are drawn and constrained.

    * ``temperature`` (0: greedy), ``top_k`` (0: no cut), ``top_p`` (nucleus mass, (0, 1]);
    * ``key_constraint``: scale tones only (``cantus.melody.decoding.MelodyGrammar``);
    * ``end_on_tonic`` and ``cadence_steps``: the last note of the last bar on the tonic, or
      on one of these scale steps (semitones above the tonic): a phrase's cadence;
    * ``tonal_emphasis``: a logit bonus in nats on the beats for the pitches that establish
      the key (``TONAL_EMPHASIS_WEIGHTS``);
    * ``guidance``: classifier-free guidance on the key (1: none);
    * ``phrase_continues``: the request's last bar ends a phrase that the tune goes on from
      (not the end of the piece). The model learned ``EOS`` as the end of a tune and the bar
      line (``BAR``) as what follows a phrase mid-tune, so the request's closing ``EOS`` is
      scored as the model scores ``BAR`` there; and after the cadence tone, held through
      its cadence beat, the bar's last beat breathes or leads into the next phrase (an
      upbeat), as real phrases do (``cantus.melody.decoding.MelodyGrammar``); at the end
      of the piece the cadence tone holds to the bar line;
    * ``first_onset``: where the first generated bar's first note starts, in grid steps
      from its bar line (0: on the downbeat; -1: wherever the model puts it). A piece's
      opening is decided by its plan, not left to the model: 71 % of the corpus opens with
      a pickup bar, whose phrases end a bar later than the plan's (``FormComposer``);
    * ``cadence_beat``: the beat of the last bar (0: the downbeat) on which the cadence tone
      arrives, with ``cadence_steps``; -1: the bar's last beat but one. The form composer
      draws it per phrase from where the corpus's phrases arrive
      (``cantus.melody.phrase_endings``); a beat past the bar's last means its last;
    * ``upbeat``: with ``phrase_continues``, whether a note follows the held cadence tone in
      its bar (an upbeat into the next phrase): 1 wherever the bar leaves room, 0 never (the
      tone holds or the bar rests), -1 as the model likes. The form composer draws it per
      phrase as often as the corpus's phrases lead on after a cadence on that beat;
    * ``cadence_hold``: with ``phrase_continues``, how long the cadence tone lasts, against
      its beat (``cantus.melody.phrase_endings.hold_of``): -1 through the beat, the rest the
      model's (the default); 0 under half of it, 1 half of it or more, 2 the beat or more, 3
      two beats or more, the tone starting on the cadence beat. A reel's phrase mostly runs
      on through its cadence, a waltz's holds its tone for two beats in half of them; the
      form composer draws it per phrase that leads on, as often as the corpus's do
      (``CADENCE_HOLDS``);
    * ``breath``: with ``cadence_hold`` and ``upbeat`` 1, whether a rest comes between the
      cadence tone and the upbeat (1), none does (0), or the model's choice (-1); the form
      composer draws a piece's habit once, as the corpus's tunes of its style and meter have
      theirs (``BREATH_HABITS``), then each phrase by it (``BREATH_SHARES``);
    * ``pitch_range`` (MIDI, inclusive): every generated pitch inside it; the form composer
      narrows it for a contrasting section's phrases to a window around their register aim
      (``cantus.melody.register.register_pitch_range``);
    * ``max_notes_per_bar``: not sent over the wire, the served model uses the default.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    key_constraint: bool = False
    end_on_tonic: bool = False
    tonal_emphasis: float = 0.0
    cadence_steps: tuple[int, ...] = ()
    guidance: float = 1.0
    first_onset: int = -1
    cadence_beat: int = -1
    phrase_continues: bool = False
    upbeat: int = -1
    cadence_hold: int = -1
    breath: int = -1
    pitch_range: tuple[int, int] = DEFAULT_PITCH_RANGE
    max_notes_per_bar: int = DEFAULT_MAX_NOTES_PER_BAR

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            raise SamplingError(
                "temperature", f"{self.temperature} is outside 0..{MAX_TEMPERATURE}"
            )
        if self.top_k < 0:
            raise SamplingError("top_k", f"{self.top_k} is negative")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError("top_p", f"{self.top_p} is outside (0, 1]")
        if not 0.0 <= self.tonal_emphasis <= MAX_TONAL_EMPHASIS:
            raise SamplingError(
                "tonal_emphasis", f"{self.tonal_emphasis} is outside 0..{MAX_TONAL_EMPHASIS}"
            )
        if any(not 0 <= step < 12 for step in self.cadence_steps):
            raise SamplingError(
                "cadence_steps", f"{list(self.cadence_steps)} must hold semitones 0..11"
            )
        if not 1.0 <= self.guidance <= MAX_GUIDANCE:
            raise SamplingError("guidance", f"{self.guidance} is outside 1..{MAX_GUIDANCE}")
        if not -1 <= self.first_onset < MAX_BAR_STEPS:
            raise SamplingError(
                "first_onset", f"{self.first_onset} is outside -1..{MAX_BAR_STEPS - 1}"
            )
        if not -1 <= self.cadence_beat < MAX_BAR_STEPS:
            raise SamplingError(
                "cadence_beat", f"{self.cadence_beat} is outside -1..{MAX_BAR_STEPS - 1}"
            )
        if self.upbeat not in (-1, 0, 1):
            raise SamplingError("upbeat", f"{self.upbeat} is not -1, 0 or 1")
        if not -1 <= self.cadence_hold <= 3:
            raise SamplingError("cadence_hold", f"{self.cadence_hold} is outside -1..3")
        if self.breath not in (-1, 0, 1):
            raise SamplingError("breath", f"{self.breath} is not -1, 0 or 1")
        if len(self.pitch_range) != 2:
            raise SamplingError("pitch_range", f"{list(self.pitch_range)} is not [low, high]")
        low, high = self.pitch_range
        if not 0 <= low <= high <= 127:
            raise SamplingError("pitch_range", f"{self.pitch_range} is not a MIDI range")
        if self.max_notes_per_bar < 1:
            raise SamplingError("max_notes_per_bar", f"{self.max_notes_per_bar} is below 1")


DEFAULT_SAMPLING = SamplingParams()
"""The defaults, one shared (frozen) instance for signatures to default to."""


@dataclass(frozen=True)
class WireTensor:
    """How one ``SamplingParams`` field travels to Triton: the tensor's name, its Triton
    datatype, and whether it holds a list (``cadence_steps``, ``pitch_range``) rather than one
    value."""

    name: str
    datatype: str
    is_list: bool = False


WIRE_TENSORS: dict[str, WireTensor] = {
    "temperature": WireTensor("TEMPERATURE", "FP32"),
    "top_k": WireTensor("TOP_K", "INT32"),
    "top_p": WireTensor("TOP_P", "FP32"),
    "key_constraint": WireTensor("KEY_CONSTRAINT", "BOOL"),
    "end_on_tonic": WireTensor("END_ON_TONIC", "BOOL"),
    "tonal_emphasis": WireTensor("TONAL_EMPHASIS", "FP32"),
    "cadence_steps": WireTensor("CADENCE_STEPS", "INT32", is_list=True),
    "guidance": WireTensor("GUIDANCE", "FP32"),
    "first_onset": WireTensor("FIRST_ONSET", "INT32"),
    "cadence_beat": WireTensor("CADENCE_BEAT", "INT32"),
    "phrase_continues": WireTensor("PHRASE_CONTINUES", "BOOL"),
    "upbeat": WireTensor("UPBEAT", "INT32"),
    "cadence_hold": WireTensor("CADENCE_HOLD", "INT32"),
    "breath": WireTensor("BREATH", "INT32"),
    "pitch_range": WireTensor("PITCH_RANGE", "INT32", is_list=True),
}
"""The fields of ``SamplingParams`` a Triton request carries, by field name. A request that
leaves a tensor out gets the field's default."""


def served_sampling(settings: Settings) -> SamplingParams:
    """What the melody service asks of the model, the settings' nucleus, scale mask,
    guidance and tonal emphasis; each phrase adds its cadence and opening
    (``PhraseRequest.sampling``)."""
    return SamplingParams(
        top_p=settings.melody_top_p,
        key_constraint=settings.melody_key_constraint,
        guidance=settings.melody_guidance,
        tonal_emphasis=settings.melody_tonal_emphasis,
    )
