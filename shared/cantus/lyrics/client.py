"""``TritonLyricScorer``: the scoring interface (``scoring``) answered by the ``lyric_lm``
model on Triton over gRPC. Decoupled models are served only over ``ModelStreamInfer``, so
the scorer keeps one stream open and matches responses to requests by id. Calls block
(the lyric service decodes in a worker thread) and are serialised by a lock.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from cantus.triton_client import channel_args

if TYPE_CHECKING:
    from cantus.lyrics.writer import LyricResources
    from cantus.settings import Settings


class LyricLMError(RuntimeError):
    """Triton refused or failed a scoring request; the message is Triton's."""


def _text_tensor(name: str, texts: Sequence[str]) -> triton_grpc.InferInput:
    array = np.array([t.encode() for t in texts], dtype=np.object_)
    tensor = triton_grpc.InferInput(name, [len(texts)], "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def check_served(version: str, expected: str | None, language: str) -> None:
    """Raise ``LyricLMError`` when ``version`` (``name@digest``) is a lyric checkpoint trained
    here other than ``expected``."""
    served = version.partition("@")[0]
    if expected and served.startswith("lyric_") and served != expected:
        raise LyricLMError(
            f"lyric_lm serves {version} for {language}, but this process decodes with the "
            f"lexicon of {expected}: give Triton and the lyric service the same "
            "CANTUS_LYRIC_MODELS"
        )


class TritonLyricScorer:
    """``expected``: the checkpoint's name the caller's lexicon belongs to (``lyric_en``,
    ``lyric_lstm_en``: ``training.checkpoint_path(...).stem``); an answer from another
    checkpoint trained here is refused, naming both, since its scores would be read
    against the wrong lexicon (Triton and the caller were given different
    ``lyric_models``). Any other LM (``causal_lm_dir``) is taken as it is. ``register``: ask
    for lines in that register (the lyric transformer answers; ``expected`` is then its
    checkpoint's name)."""

    def __init__(
        self,
        address: str,
        language: str,
        *,
        model_name: str = "lyric_lm",
        timeout_s: float = 60.0,
        expected: str | None = None,
        register: str = "",
    ) -> None:
        self.address = address
        self.language = language
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.expected = expected
        self.register = register
        self.version = model_name
        self._client: triton_grpc.InferenceServerClient | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._responses: queue.Queue = queue.Queue()
        self._candidates: tuple[tuple[str, ...], triton_grpc.InferInput] | None = None

    def _stream(self) -> triton_grpc.InferenceServerClient:
        if self._client is None:
            client = triton_grpc.InferenceServerClient(self.address, channel_args=channel_args())
            client.start_stream(callback=lambda result, error: self._responses.put((result, error)))
            self._client = client
        return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.stop_stream()
                    self._client.close()
                finally:
                    self._client = None

    def score(self, contexts: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        with self._lock:
            request_id = str(next(self._ids))
            try:
                self._stream().async_stream_infer(
                    self.model_name,
                    [
                        _text_tensor("LANGUAGE", [self.language]),
                        _text_tensor("CONTEXTS", contexts),
                        self._candidate_tensor(candidates),
                        *([_text_tensor("REGISTER", [self.register])] if self.register else []),
                    ],
                    request_id=request_id,
                    outputs=[
                        triton_grpc.InferRequestedOutput("LOGPROBS"),
                        triton_grpc.InferRequestedOutput("MODEL"),
                    ],
                )
                while True:
                    result, error = self._responses.get(timeout=self.timeout_s)
                    if error is not None:  # Triton's error kept as the cause (#22)
                        raise LyricLMError(str(error)) from error
                    if result.get_response().id == request_id:
                        break  # an answer to an abandoned request is skipped
            except (InferenceServerException, queue.Empty) as error:
                # a broken stream's own error (Triton gone: UNAVAILABLE) reaches the callback;
                # the call only says the stream is no longer valid (#22)
                cause = (
                    self._stream_error() if isinstance(error, InferenceServerException) else None
                )
                cause = cause or error
                self._reset()
                raise LyricLMError(f"lyric_lm: {cause or 'no response in time'}") from cause
            except LyricLMError:
                self._reset()
                raise
            self.version = result.as_numpy("MODEL")[0].decode()
            check_served(self.version, self.expected, self.language)
            return result.as_numpy("LOGPROBS").reshape(len(contexts), len(candidates))

    def _candidate_tensor(self, candidates: Sequence[str]) -> triton_grpc.InferInput:
        """The ``CANDIDATES`` input, serialised once for as long as the candidates stay the
        same: a decoder scores its whole lexicon (6,000 words) at every step, and serialising
        it again each time was 7 % of the lyric service's CPU (py-spy, session 25)."""
        key = tuple(candidates)
        if self._candidates is None or self._candidates[0] != key:
            self._candidates = (key, _text_tensor("CANDIDATES", key))
        return self._candidates[1]

    def _stream_error(self, wait_s: float = 1.0) -> BaseException | None:
        """The error the stream's callback was given, if one comes within ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, error = self._responses.get(timeout=left)
            except queue.Empty:
                return None
            if isinstance(error, BaseException):
                return error
        return None

    def _reset(self) -> None:
        if self._client is not None:
            try:
                self._client.stop_stream()
                self._client.close()
            except Exception:  # the stream is broken already; a new one comes next call
                pass
            self._client = None
        self._responses = queue.Queue()


def served_lyric_resources(settings: Settings) -> LyricResources:
    """What a process that writes lyrics against the stack needs (the lyric service, the
    gateway's editor): a ``TritonLyricScorer`` per language and register, checked against the
    checkpoint it expects, the setting's lexicons, and the theme embedder on
    ``settings.lyric_torch_threads``."""
    from cantus.lyrics.theme import ThemeEmbedder
    from cantus.lyrics.training import checkpoint_path
    from cantus.lyrics.writer import LyricResources

    return LyricResources(
        scorer_for=lambda language, register: TritonLyricScorer(
            settings.triton_grpc,
            language,
            model_name=settings.lyric_model_name,
            expected=checkpoint_path(
                language, model="transformer" if register else settings.lyric_models[language]
            ).stem,
            register=register,
        ),
        models=settings.lyric_models,
        embedder=ThemeEmbedder(torch_threads=settings.lyric_torch_threads),
    )
