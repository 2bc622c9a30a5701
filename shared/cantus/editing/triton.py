"""The models an edit asks, served by Triton: melody_lm decodes (streamed tokens, as the
melody service asks them), melody_score scores the bars after a gap, harmony chooses
chords. Imports no torch."""

from __future__ import annotations

from collections.abc import AsyncIterator

from cantus.editing.editor import EditModels, EditOptions
from cantus.harmony.client import HarmonyClient
from cantus.harmony.context import checkpoint_version
from cantus.lyrics.client import served_lyric_resources
from cantus.melody.client import MelodyLMClient
from cantus.melody.composition import DecodePhrase, PhraseRequest
from cantus.melody.prompting import MelodyPrompter
from cantus.melody.sampling import served_sampling
from cantus.melody.suffix_scoring import MelodyScoreClient
from cantus.music.notes import Bar
from cantus.settings import Settings
from cantus.v1 import events_pb2 as pb


def triton_edit_models(settings: Settings) -> EditModels:
    prompter = MelodyPrompter.from_checkpoint(settings.melody_checkpoint)
    melody = MelodyLMClient(settings.triton_grpc, settings.melody_model_name)
    scorer = MelodyScoreClient(settings.triton_grpc, settings.melody_score_model_name)
    harmony = HarmonyClient(
        settings.triton_grpc, settings.harmony_model_name, timeout_s=settings.harmony_timeout_s
    )

    def decoder(spec: pb.PieceSpec) -> DecodePhrase:
        async def decode(phrase: PhraseRequest) -> AsyncIterator[Bar]:
            assembler = prompter.bar_assembler(spec)
            async for token in melody.stream_tokens(
                phrase.prompt(prompter.tokenizer),
                n_bars=phrase.n_bars,
                seed=phrase.seed,
                sampling=phrase.sampling(served_sampling(settings)),
                request_id=f"edit:{phrase.first_bar}:{phrase.seed}",
            ):
                bar = assembler.push(token)
                if bar is not None:
                    yield bar
            for bar in assembler.finish():
                yield bar

        return decode

    return EditModels(
        decoder=decoder,
        score=scorer.score,
        harmonize=harmony.harmonize,
        prompter=prompter,
        harmony_model_version=checkpoint_version(settings.harmony_checkpoint),
        lyrics=served_lyric_resources(settings),
    )


def edit_options(settings: Settings) -> EditOptions:
    return EditOptions(
        segment_bars=settings.segment_bars,
        candidates=settings.edit_candidates,
        preset=settings.loudness_preset,
        audio_formats=tuple(settings.audio_formats),
        leadsheet=settings.leadsheet,
        humanise=settings.humanise,
        lyric_melisma=settings.lyric_melisma,
        fill_in_middle=settings.melody_fill_in_middle,
        register_contrast=settings.melody_register_contrast,
        register_window=settings.melody_register_window,
    )
