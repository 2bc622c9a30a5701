"""The melody language model: a GPT-style decoder-only transformer with a batched KV cache.

Pre-LayerNorm blocks, learned positions (up to ``max_len``), input and output embeddings
tied. A model with a contour (``MelodyLMConfig.contour``) also adds, at every position, an
embedding of the melody's last interval: the step from the pitch before the latest one to the
latest one (``contour_buckets``). Its attention would otherwise have to find the last two pitch
tokens and compare their embeddings to know which way the melody is moving; without the hint
the 3 M-parameter model shipped before continued a step in the same direction 40 % of the
time where the held-out tunes do 54 % (teacher-forced: ``cantus.eval.contour_calibration``),
and its melodies zig-zagged (issue #14). A model with a tonality (``MelodyLMConfig.tonality``)
adds, at every position, an embedding of the latest pitch's scale degree in the asked key and
mode (``degree_buckets``): what the key token at the front of the sequence means for the
pitch just played, without attention having to relate the two. With only the key token, the
pieces decoded without classifier-free guidance were heard in the asked key 71-79 % of the
time (minor keys mostly as their relative major), and the guidance that fixed that bent the
pitch-class profile (the dominant over-used, the 6th and 7th under-used). Measured (session
20, docs/results/melody_realness_decomposition.md): continued with it, the model did not hold
the key better (unguided 73 % against a control's 77 %) but its unguided melodies were the
most corpus-like yet; the shipped checkpoint does not have it.

``forward`` scores whole sequences (training, evaluation); ``prefill`` and ``decode_step``
decode incrementally with a ``KVCache`` whose slots hold sequences of different lengths, so
one forward step advances every active sequence by one token (continuous batching).
Attention in a step covers only the longest active context, so the cost of a step follows
the real context rather than ``max_len``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from cantus.melody.tokenizer import Contour, Tonality


@dataclass(frozen=True)
class MelodyLMConfig:
    """Model shape. ``max_len``: longest sequence in tokens (positions 0..max_len-1);
    ``d_model`` must divide by ``n_heads``; ``dropout`` in [0, 1) (training only).
    ``n_kv_heads``: key/value heads (grouped-query attention; None: one per query head; the
    shipped model has 1). Fewer of them shrink the KV cache that a batched decode step reads."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    max_len: int = 1024
    dropout: float = 0.1
    n_kv_heads: int | None = None
    contour: Contour | None = None
    """The contour embedding's token ids (``Contour``), None: no contour embedding."""
    tonality: Tonality | None = None
    """The scale-degree embedding's token ids (``Tonality``), None: none. Needs a contour
    (the degree is that of the contour's latest pitch)."""

    def __post_init__(self) -> None:
        # a checkpoint's config comes back as plain lists
        if self.contour is not None and not isinstance(self.contour, Contour):
            first, count, resets = self.contour
            object.__setattr__(self, "contour", Contour(first, count, tuple(resets)))
        if self.tonality is not None and not isinstance(self.tonality, Tonality):
            first_key, modes, lowest = self.tonality
            object.__setattr__(self, "tonality", Tonality(first_key, tuple(modes), lowest))
        if self.tonality is not None and self.contour is None:
            raise ValueError("a tonality (scale-degree embedding) needs a contour")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise ValueError(
                f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.kv_heads}"
            )

    @classmethod
    def tiny(cls, vocab_size: int) -> MelodyLMConfig:
        """A few thousand parameters: for tests."""
        return cls(vocab_size, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=256, dropout=0.0)

    @classmethod
    def default(cls, vocab_size: int) -> MelodyLMConfig:
        """The shipped model: ~3.1M parameters, one key/value head shared by its 4 query
        heads (a 32-sequence decode step reads a quarter of the keys and values: 4.19 ->
        2.73 ms; test NLL unchanged), ~6 passes over the corpus in 40 minutes on 2 CPU cores
        (~4.5k tokens/s)."""
        return cls(vocab_size, dropout=0.05, n_kv_heads=1)

    @classmethod
    def named(cls, name: str, vocab_size: int) -> MelodyLMConfig:
        if name not in ("tiny", "default"):
            raise ValueError(f"unknown model config {name!r}: expected 'default' or 'tiny'")
        return getattr(cls, name)(vocab_size)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def to_dict(self) -> dict[str, object]:
        """Plain values (a checkpoint loads without unpickling classes)."""
        fields = asdict(self)
        if self.contour is not None:
            first, count, resets = self.contour
            fields["contour"] = [first, count, list(resets)]
        if self.tonality is not None:
            first_key, modes, lowest = self.tonality
            fields["tonality"] = [first_key, list(modes), lowest]
        return fields


INTERVAL_LIMIT = 12
"""Widest interval (semitones) the contour embedding tells apart; wider ones share the
octave's bucket."""
NO_INTERVAL = 0
"""Contour bucket of a position with fewer than two pitches since the start or a reset."""
N_CONTOUR_BUCKETS = 2 * INTERVAL_LIMIT + 2
"""``NO_INTERVAL`` and one bucket per interval -``INTERVAL_LIMIT``..+``INTERVAL_LIMIT``."""


def _interval_bucket(interval: torch.Tensor) -> torch.Tensor:
    return interval.clamp(-INTERVAL_LIMIT, INTERVAL_LIMIT) + INTERVAL_LIMIT + 1


def contour_buckets(tokens: torch.Tensor, contour: Contour) -> torch.Tensor:
    """Each position's contour bucket [batch, time]: the interval from the pitch before the
    latest pitch at or before it to that latest pitch, ``NO_INTERVAL`` where there are not two
    pitches since the start or the last reset token."""
    return contour_state(tokens, contour)[0]


def contour_state(tokens: torch.Tensor, contour: Contour) -> tuple[torch.Tensor, torch.Tensor]:
    """``contour_buckets`` and, at each position, the latest pitch since the start or the last
    reset (relative to the lowest pitch; -1: none): what ``KVCache.contour`` holds for a slot
    whose sequence ends there."""
    time = tokens.shape[-1]
    pitch = tokens - contour.first_pitch_id
    is_pitch = (pitch >= 0) & (pitch < contour.n_pitches)
    positions = torch.arange(time, device=tokens.device).expand_as(tokens)
    before_start = torch.full_like(tokens, -1)
    last_pitch_at = torch.where(is_pitch, positions, before_start).cummax(dim=-1).values
    resets = torch.tensor(contour.reset_ids, device=tokens.device, dtype=tokens.dtype)
    last_reset_at = torch.where(torch.isin(tokens, resets), positions, before_start)
    last_reset_at = last_reset_at.cummax(dim=-1).values
    pitch_before_at = torch.cat([before_start[..., :1], last_pitch_at[..., :-1]], dim=-1)
    pitch_before = pitch.gather(-1, pitch_before_at.clamp(min=0))
    made_here = torch.where(
        is_pitch & (pitch_before_at > last_reset_at),
        _interval_bucket(pitch - pitch_before),
        NO_INTERVAL,
    )
    since_reset = last_pitch_at > last_reset_at
    latest_at = last_pitch_at.clamp(min=0)
    buckets = torch.where(since_reset, made_here.gather(-1, latest_at), NO_INTERVAL)
    latest_pitch = torch.where(since_reset, pitch.gather(-1, latest_at), -1)
    return buckets, latest_pitch


NO_DEGREE = 0
"""Degree bucket of a position without a key (``NOKEY NOMODE``) or without a pitch yet."""
N_DEGREE_BUCKETS = 1 + 2 * 12
"""``NO_DEGREE`` and one bucket per mode (major, minor) and semitone above the tonic."""


def sequence_key(tokens: torch.Tensor, tonality: Tonality) -> torch.Tensor:
    """The key of each sequence [batch, 2]: its tonic pitch class and mode (0 major, 1 minor)
    from the prefix's KEY and MODE tokens (``BOS KEY MODE ...``); -1 for both where the prefix
    has no key (``NOKEY NOMODE``) or is too short."""
    tokens = tokens.reshape(-1, tokens.shape[-1])
    none = torch.full((tokens.shape[0], 2), -1, dtype=torch.long, device=tokens.device)
    if tokens.shape[-1] <= 2:
        return none
    tonic = tokens[:, 1] - tonality.first_key_id
    major, minor = tonality.mode_ids
    mode = torch.where(tokens[:, 2] == minor, 1, torch.where(tokens[:, 2] == major, 0, -1))
    keyed = (tonic >= 0) & (tonic < 12) & (mode >= 0)
    return torch.where(keyed[:, None], torch.stack([tonic, mode], dim=-1), none)


def degree_buckets(
    latest_pitch: torch.Tensor, key: torch.Tensor, tonality: Tonality
) -> torch.Tensor:
    """Degree bucket of each latest pitch (relative to the lowest pitch, -1: none; [batch, ...])
    in its sequence's ``key`` ([batch, 2], ``sequence_key``): ``1 + 12 * mode + semitones
    above the tonic``, ``NO_DEGREE`` without a pitch or a key."""
    shape = (-1,) + (1,) * (latest_pitch.dim() - 1)
    tonic, mode = key[:, 0].reshape(shape), key[:, 1].reshape(shape)
    degree = (latest_pitch + tonality.lowest_pitch - tonic) % 12
    known = (latest_pitch >= 0) & (tonic >= 0)
    return torch.where(known, 1 + 12 * mode + degree, NO_DEGREE)


class KVCache:
    """Keys and values of up to ``max_batch`` sequences, one slot each.

    ``data``: [n_layers, 2 (key, value), max_batch, kv_heads, max_len, head_dim];
    ``lengths[slot]``: tokens cached in the slot (0 = free or empty);
    ``contour[slot]``: the slot's latest pitch (relative to the lowest, -1: none since the
    start or a reset) and its contour bucket, for a model with a contour embedding;
    ``key[slot]``: the slot's tonic and mode (``sequence_key``), for a model with a tonality.
    """

    def __init__(
        self,
        config: MelodyLMConfig,
        max_batch: int,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.config = config
        self.max_batch = max_batch
        self.data = torch.zeros(
            config.n_layers,
            2,
            max_batch,
            config.kv_heads,
            config.max_len,
            config.head_dim,
            device=device,
            dtype=dtype,
        )
        self.lengths = torch.zeros(max_batch, dtype=torch.long, device=device)
        self.contour = torch.zeros(max_batch, 2, dtype=torch.long, device=device)
        self.contour[:, 0] = -1
        self.key = torch.full((max_batch, 2), -1, dtype=torch.long, device=device)

    def reset(self, slot: int) -> None:
        """Forget the slot's sequence (its stale entries are masked out by the length)."""
        self.lengths[slot] = 0
        self.contour[slot, 0] = -1
        self.contour[slot, 1] = NO_INTERVAL
        self.key[slot] = -1

    def move(self, source: int, target: int) -> None:
        """Move the sequence in slot ``source`` to slot ``target`` and free ``source``."""
        length = int(self.lengths[source])
        self.data[:, :, target, :, :length] = self.data[:, :, source, :, :length]
        self.lengths[target] = length
        self.contour[target] = self.contour[source]
        self.key[target] = self.key[source]
        self.reset(source)


def _step_linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)`` for a decode step. A bfloat16 ``x`` goes through the layer's bfloat16
    copy (``MelodyLM.keep_bfloat16_copies``) and gives bfloat16: a batched step's matrix
    products run twice as fast in bf16 on CPUs with AMX, while a single row is faster in
    fp32. A batched step stays in bf16 from each layer norm to the residual add, since on a
    [32, 256] activation every dtype conversion costs about as much as a GEMM's dispatch."""
    copy = getattr(layer, "bfloat16_copy", None)
    if copy is not None and x.dtype == torch.bfloat16:
        return F.linear(x, *copy)
    return F.linear(x, layer.weight, layer.bias)


class _SelfAttention(nn.Module):
    def __init__(self, config: MelodyLMConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.kv_heads = config.kv_heads
        self.head_dim = config.head_dim
        # queries, then keys, then values (one per kv head each)
        self.qkv = nn.Linear(config.d_model, (config.n_heads + 2 * config.kv_heads) * self.head_dim)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout
        self.low_precision_batch = math.inf  # see MelodyLM.keep_bfloat16_copies

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, time, _ = x.shape
        kv_width = self.kv_heads * self.head_dim
        q, k, v = self.qkv(x).split([self.n_heads * self.head_dim, kv_width, kv_width], dim=-1)
        return tuple(t.view(batch, time, -1, self.head_dim).transpose(1, 2) for t in (q, k, v))

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        batch, _, time, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(batch, time, self.n_heads * self.head_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal attention over the whole sequence; also returns its keys and values
        [batch, heads, time, head_dim] for a prefill."""
        q, k, v = self._split(x)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            is_causal=True,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.kv_heads != self.n_heads,
        )
        return self._merge(y), k, v

    def step(
        self,
        x: torch.Tensor,
        cache: torch.Tensor,
        slots: torch.Tensor,
        positions: torch.Tensor,
        context: int,
        visible: torch.Tensor | None,
        span: slice | None = None,
    ) -> torch.Tensor:
        """One new token per sequence. ``x`` [batch, 1, d_model]; ``cache`` this layer's
        [2, max_batch, heads, max_len, head_dim]; ``positions`` [batch] where each new token
        goes; ``context`` = max(positions) + 1, the attention span of this step; ``visible``
        [batch, 1, 1, context] which cached positions each new token sees, or None when
        every one is visible (one sequence); ``span``: the same slots as a slice when they
        are consecutive and ascending.

        Written with functional calls and views: at batch 1 the per-operation overhead, not
        arithmetic, sets the time per token."""
        batch = x.shape[0]
        qkv = _step_linear(x, self.qkv)
        width = self.n_heads * self.head_dim
        key_value = qkv[:, 0, width:].view(batch, 2, self.kv_heads, self.head_dim)
        # keys and values in one write; the cache may hold them in a narrower dtype (bf16
        # halves the memory a long batched step reads, which bounds its attention time)
        if batch == 1 and span is not None:  # one sequence: its position is context - 1
            cache[:, span.start, :, context - 1] = key_value[0]
        else:
            cache[:, slots, :, positions] = key_value.to(cache.dtype)
        # a slice reads the cache in place; indexing by a tensor would copy every key and value
        rows = span if span is not None else slots
        keys = cache[0, rows, :, :context]
        values = cache[1, rows, :, :context]
        # a group of query heads shares one kv head: with one new token each, the group's
        # queries are several query rows against the same keys, which reads each key once
        group = self.n_heads // self.kv_heads
        query = qkv[:, 0, :width].view(batch, self.kv_heads, group, self.head_dim)
        y = F.scaled_dot_product_attention(query.to(cache.dtype), keys, values, attn_mask=visible)
        return _step_linear(y.to(x.dtype).view(batch, 1, -1), self.out)


class _Block(nn.Module):
    def __init__(self, config: MelodyLMConfig) -> None:
        super().__init__()
        self.ln_attention = nn.LayerNorm(config.d_model)
        self.attention = _SelfAttention(config)
        self.ln_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model),
            nn.Dropout(config.dropout),
        )
        self.dropout = nn.Dropout(config.dropout)

    def mlp_linears(self) -> tuple[nn.Linear, nn.Linear]:
        """``mlp[0]`` and ``mlp[2]``, typed (``nn.Sequential`` indexes as ``nn.Module``)."""
        return cast(nn.Linear, self.mlp[0]), cast(nn.Linear, self.mlp[2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attended, k, v = self.attention(self.ln_attention(x))
        x = x + self.dropout(attended)
        return x + self.mlp(self.ln_mlp(x)), k, v

    def step(
        self,
        x: torch.Tensor,
        cache: torch.Tensor,
        slots: torch.Tensor,
        positions: torch.Tensor,
        context: int,
        visible: torch.Tensor | None,
        span: slice | None = None,
    ) -> torch.Tensor:
        ln_attention, ln_mlp = self.ln_attention, self.ln_mlp
        # the residual stream and layer norms stay fp32; a batched step's linear layers and
        # attention run in bf16 between them (see _step_linear)
        low_precision = x.shape[0] >= self.attention.low_precision_batch
        compute_dtype = torch.bfloat16 if low_precision else x.dtype
        normed = F.layer_norm(
            x,
            ln_attention.normalized_shape,
            ln_attention.weight,
            ln_attention.bias,
            ln_attention.eps,
        ).to(compute_dtype)
        x = x + self.attention.step(normed, cache, slots, positions, context, visible, span)
        normed = F.layer_norm(x, ln_mlp.normalized_shape, ln_mlp.weight, ln_mlp.bias, ln_mlp.eps)
        mlp_in, mlp_out = self.mlp_linears()
        hidden = F.gelu(_step_linear(normed.to(compute_dtype), mlp_in))
        return x + _step_linear(hidden, mlp_out)


class MelodyLM(nn.Module):
    """The transformer. Token ids in, next-token logits [.., vocab_size] out."""

    contour_resets: torch.Tensor
    """The contour's reset token ids (a buffer), for a model with a contour."""

    def __init__(self, config: MelodyLMConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.max_len, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_final = nn.LayerNorm(config.d_model)
        self.apply(self._init_weights)
        self.contour_embedding: nn.Embedding | None = None
        if config.contour is not None:
            self.contour_embedding = nn.Embedding(N_CONTOUR_BUCKETS, config.d_model)
            # zeros: a model given a contour starts as the same model without one, so a
            # trained checkpoint can be continued with it (``training.continue_from``)
            nn.init.zeros_(self.contour_embedding.weight)
            resets = torch.tensor(config.contour.reset_ids, dtype=torch.long)
            self.register_buffer("contour_resets", resets, persistent=False)
        self.degree_embedding: nn.Embedding | None = None
        if config.tonality is not None:
            self.degree_embedding = nn.Embedding(N_DEGREE_BUCKETS, config.d_model)
            nn.init.zeros_(self.degree_embedding.weight)  # as the contour's: continuable
        # GPT-2: scale the residual projections by depth so the residual stream stays O(1)
        for block in self.typed_blocks():
            for projection in (block.attention.out, block.mlp_linears()[1]):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def keep_bfloat16_copies(self, from_batch: int) -> None:
        """Decode steps of ``from_batch`` or more sequences multiply by bfloat16 copies of
        the blocks' weights (the fp32 weights stay for smaller steps and for training).
        The sampled tokens of a sequence may then depend on how many share its step."""
        for block in self.typed_blocks():
            for layer in (block.attention.qkv, block.attention.out, *block.mlp_linears()):
                layer.bfloat16_copy = (  # type: ignore[assignment]  # an attribute nn.Linear lacks
                    layer.weight.detach().to(torch.bfloat16),
                    layer.bias.detach().to(torch.bfloat16),
                )
            block.attention.low_precision_batch = from_batch

    def typed_blocks(self) -> Iterable[_Block]:
        """``blocks``, typed (``nn.ModuleList`` iterates as ``nn.Module``)."""
        return cast("Iterable[_Block]", self.blocks)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.ln_final(x), self.token_embedding.weight)  # tied output embedding

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.token_embedding(tokens) + self.position_embedding(positions))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Causal logits [batch, time, vocab] of tokens [batch, time] (time <= max_len)."""
        return self._forward(tokens)[0]

    def _forward(
        self, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        time = tokens.shape[1]
        if time > self.config.max_len:
            raise ValueError(f"sequence of {time} tokens exceeds max_len {self.config.max_len}")
        x = self._embed(tokens, torch.arange(time, device=tokens.device))
        if self.contour_embedding is not None and self.config.contour is not None:
            buckets, latest_pitch = contour_state(tokens, self.config.contour)
            x = x + self.contour_embedding(buckets)
            if self.degree_embedding is not None and self.config.tonality is not None:
                key = sequence_key(tokens, self.config.tonality)
                x = x + self.degree_embedding(
                    degree_buckets(latest_pitch, key, self.config.tonality)
                )
        kv = []
        for block in self.blocks:
            x, k, v = block(x)
            kv.append((k, v))
        return self._logits(x), kv

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, cache: KVCache, slot: int) -> torch.Tensor:
        """Run a prompt [time] (time >= 1) into ``slot`` (replacing what it held); returns the
        logits [vocab] for the token after the prompt."""
        time = tokens.shape[0]
        logits, kv = self._forward(tokens[None])
        for layer, (k, v) in enumerate(kv):
            cache.data[layer, 0, slot, :, :time] = k[0]
            cache.data[layer, 1, slot, :, :time] = v[0]
        cache.lengths[slot] = time
        if self.config.contour is not None:
            buckets, latest_pitch = contour_state(tokens, self.config.contour)
            cache.contour[slot] = torch.stack([latest_pitch[-1], buckets[-1]])
        if self.config.tonality is not None:
            cache.key[slot] = sequence_key(tokens, self.config.tonality)[0]
        return logits[0, -1]

    @torch.inference_mode()
    def decode_step(
        self, tokens: torch.Tensor, cache: KVCache, slots: torch.Tensor
    ) -> torch.Tensor:
        """Append one token per slot (``tokens`` [batch], ``slots`` [batch], distinct) and
        return each slot's next-token logits [batch, vocab]. Each slot's length grows by 1.
        Consecutive ascending slots (e.g. 0..n-1) are read from the cache without a copy."""
        positions = cache.lengths[slots]
        slot_list = slots.tolist()
        consecutive = slot_list == list(range(slot_list[0], slot_list[0] + len(slot_list)))
        span = slice(slot_list[0], slot_list[0] + len(slot_list)) if consecutive else None
        context = int(positions.max()) + 1
        if context > self.config.max_len:
            raise ValueError(f"a sequence would exceed max_len {self.config.max_len}")
        # the same attention mask serves every layer; one sequence sees all it has cached
        visible = None
        if len(slot_list) > 1:
            visible = torch.arange(context, device=tokens.device)[None, :] <= positions[:, None]
            visible = visible[:, None, None, :]
        x = F.embedding(tokens[:, None], self.token_embedding.weight) + F.embedding(
            positions[:, None], self.position_embedding.weight
        )
        if self.contour_embedding is not None:
            x = x + self.contour_embedding(self._step_contour(tokens, cache, slots))[:, None]
        if self.degree_embedding is not None and self.config.tonality is not None:
            latest = cache.contour[slots, 0]
            degrees = degree_buckets(latest, cache.key[slots], self.config.tonality)
            x = x + self.degree_embedding(degrees)[:, None]
        for layer, block in enumerate(self.typed_blocks()):
            x = block.step(x, cache.data[layer], slots, positions, context, visible, span)
        cache.lengths[slots] = positions + 1
        final = self.ln_final
        x = F.layer_norm(x[:, 0], final.normalized_shape, final.weight, final.bias, final.eps)
        return F.linear(x, self.token_embedding.weight)  # tied output embedding

    def _step_contour(
        self, tokens: torch.Tensor, cache: KVCache, slots: torch.Tensor
    ) -> torch.Tensor:
        """Each slot's contour bucket after ``tokens`` [batch] (``contour_buckets``, one step
        on from the state in ``cache.contour``), stored back in the cache."""
        assert self.config.contour is not None
        first_pitch_id, n_pitches, _ = self.config.contour
        latest, bucket = cache.contour[slots].unbind(-1)
        pitch = tokens - first_pitch_id
        is_pitch = (pitch >= 0) & (pitch < n_pitches)
        is_reset = torch.isin(tokens, self.contour_resets)
        moved = torch.where(latest >= 0, _interval_bucket(pitch - latest), NO_INTERVAL)
        bucket = torch.where(is_pitch, moved, torch.where(is_reset, NO_INTERVAL, bucket))
        latest = torch.where(is_pitch, pitch, torch.where(is_reset, -1, latest))
        cache.contour[slots] = torch.stack([latest, bucket], dim=-1)
        return bucket
