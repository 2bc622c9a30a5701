"""``cantus bench decode``: how fast the melody model decodes, served and in process, against
Hugging Face ``transformers`` ``generate()`` on a GPT-2 of the same size, in one run.

Measured:
1. tokens/s through Triton (``melody_lm``, gRPC streaming) at 1, 2, 4, … concurrent streams;
2. time per token against context length, with and without the KV cache (in process);
3. ``generate()`` on a randomly initialised ``GPT2LMHeadModel`` of the same size (batch 1 and
   batch = the largest stream count), the everyday alternative.
Ratios are taken between numbers of this run only: the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cantus.melody.checkpoint import load_melody_checkpoint
from cantus.melody.client import MelodyLMClient
from cantus.melody.controls import Controls
from cantus.melody.engine import time_decode_step
from cantus.melody.sampling import SamplingParams
from cantus.music.notes import Key, Meter
from cantus.music.styles import Energy, Style

STREAM_COUNTS = (1, 2, 4, 8, 16, 32)
CONTEXTS = (64, 128, 256, 512, 1023)


@dataclass
class DecodeReport:
    parameters: int
    stream_tokens_per_s: dict[int, float] = field(default_factory=dict)
    token_ms_cached: dict[int, float] = field(default_factory=dict)
    token_ms_uncached: dict[int, float] = field(default_factory=dict)
    hf_tokens_per_s: dict[int, float] = field(default_factory=dict)  # best over threads
    hf_runs: dict[tuple[int, int], float] = field(default_factory=dict)  # (batch, threads)
    hf_parameters: int = 0
    hf_inner: int = 0  # the GPT-2's feed-forward width
    windows: int = 3
    window_seconds: float = 4.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _streams_tokens_per_s(
    address: str, prompt: list[int], streams: int, n_bars: int, seconds: float, windows: int
) -> float:
    """Tokens/s that ``streams`` clients receive together, each sending its next request
    as soon as the last one ends (a closed loop, as the melody service does), counted over
    ``windows`` consecutive windows of ``seconds`` after every stream has started: the load
    a serving engine sees in steady state, not the ramp-down of one synchronised burst. The
    median window is returned: on a shared VM one window can lose a tenth to a neighbour."""
    client = MelodyLMClient(address)
    sampling = SamplingParams(key_constraint=True)
    async for _ in client.stream_tokens(prompt, n_bars=2, seed=0, sampling=sampling):
        pass  # warm up: the first request pays for lazy initialisation
    counting = False
    counted = 0
    deadline = float("inf")

    async def stream(index: int) -> None:
        nonlocal counted
        seed = index * 1_000
        while time.perf_counter() < deadline:
            seed += 1
            async for _ in client.stream_tokens(
                prompt, n_bars=n_bars, seed=seed, sampling=sampling
            ):
                if counting:
                    counted += 1

    tasks = [asyncio.create_task(stream(i)) for i in range(streams)]
    await asyncio.sleep(1.0)  # every stream under way
    deadline = time.perf_counter() + windows * seconds
    rates = []
    for _ in range(windows):
        counted, counting, started = 0, True, time.perf_counter()
        await asyncio.sleep(seconds)
        counting = False
        rates.append(counted / (time.perf_counter() - started))
    await asyncio.gather(*tasks)
    await client.close()
    return statistics.median(rates)


def gpt2_config_of_same_size(config, parameters: int):
    """A GPT-2 config with the melody model's vocabulary, context, width, depth and heads,
    and the feed-forward width that gives it the same parameter count (``parameters``): GPT-2
    has no grouped-query attention, so where the melody model shares keys and values across
    heads the GPT-2 gives up the same number of parameters in its feed-forward layers."""
    from transformers import GPT2Config

    def shaped(n_inner: int) -> GPT2Config:
        return GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.max_len,
            n_embd=config.d_model,
            n_layer=config.n_layers,
            n_head=config.n_heads,
            n_inner=n_inner,
        )

    # each feed-forward unit adds an input and an output weight and a bias, in every layer
    per_unit = config.n_layers * (2 * config.d_model + 1)
    at_d_ff = _gpt2_parameters(shaped(config.d_ff))
    return shaped(config.d_ff + round((parameters - at_d_ff) / per_unit))


def _gpt2_parameters(gpt2_config) -> int:
    from transformers import GPT2LMHeadModel

    return sum(p.numel() for p in GPT2LMHeadModel(gpt2_config).parameters())


def _hf_tokens_per_s(config, batch: int, new_tokens: int) -> tuple[float, int]:
    """Tokens/s of ``generate()`` on a randomly initialised GPT-2 of ``config`` (a
    ``GPT2Config``), and its parameter count."""
    from transformers import GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(config).eval()
    prompt = torch.randint(
        1, config.vocab_size, (batch, 8), generator=torch.Generator().manual_seed(0)
    )
    kwargs = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=True,
        top_p=0.95,
        pad_token_id=0,
        attention_mask=torch.ones_like(prompt),
    )
    with torch.no_grad():
        gpt2.generate(prompt, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})  # warm up
        started = time.perf_counter()
        gpt2.generate(prompt, **kwargs)
        elapsed = time.perf_counter() - started
    return batch * new_tokens / elapsed, sum(p.numel() for p in gpt2.parameters())


def run_decode_bench(
    checkpoint: Path,
    *,
    streams: tuple[int, ...] = STREAM_COUNTS,
    contexts: tuple[int, ...] = CONTEXTS,
    n_bars: int = 16,
    seconds: float = 4.0,
    windows: int = 3,
    triton_address: str | None = None,
    log=print,
) -> DecodeReport:
    """Run all three measurements; starts a private Triton unless ``triton_address`` is given."""
    model, tokenizer, _ = load_melody_checkpoint(checkpoint)
    report = DecodeReport(
        parameters=sum(p.numel() for p in model.parameters()),
        windows=windows,
        window_seconds=seconds,
    )
    controls = Controls(Key.parse("G"), Meter(4, 4), 110.0, Style.FOLK, Energy.MID)
    prompt = tokenizer.controls_prefix(controls)

    # 1. Triton streams
    with tempfile.TemporaryDirectory() as state_dir:
        stack = None
        if triton_address is None:
            from cantus.settings import Settings
            from cantus.stack import Stack

            ports = [_free_port() for _ in range(3)]
            settings = Settings(
                state_dir=Path(state_dir),
                triton_http_port=ports[0],
                triton_metrics_port=ports[2],
                triton_grpc=f"127.0.0.1:{ports[1]}",
                melody_checkpoint=checkpoint,
                # Triton alone on the machine: the thread count of melody_lm's config.pbtxt
                melody_torch_threads=None,
            )
            stack = Stack(settings)
            log("starting Triton…")
            stack.start_triton()
            triton_address = settings.triton_grpc
        try:
            for count in streams:
                rate = asyncio.run(
                    _streams_tokens_per_s(triton_address, prompt, count, n_bars, seconds, windows)
                )
                report.stream_tokens_per_s[count] = rate
                log(f"triton, {count:>2} streams: {rate:8.1f} tokens/s")
        finally:
            if stack is not None:
                stack.down()

    # 2. context length, in process (Triton is stopped: it no longer competes for the cores)
    torch.set_num_threads(int(os.environ.get("CANTUS_BENCH_THREADS", "2")))
    for context in contexts:
        cached = time_decode_step(model, context, use_cache=True, repeats=21)
        uncached = time_decode_step(model, context, use_cache=False, repeats=7)
        report.token_ms_cached[context] = cached * 1e3
        report.token_ms_uncached[context] = uncached * 1e3
        log(
            f"context {context:>4}: {cached * 1e3:6.2f} ms/token cached, "
            f"{uncached * 1e3:7.2f} ms uncached"
        )

    # 3. transformers generate() on a GPT-2 of the same size, with 1 and 2 threads: the
    # faster one is the baseline, so the ratios never flatter Cantus by a thread setting
    gpt2_config = gpt2_config_of_same_size(model.config, report.parameters)
    report.hf_inner = gpt2_config.n_inner
    for batch in sorted({1, max(streams)}):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rate, report.hf_parameters = _hf_tokens_per_s(gpt2_config, batch, new_tokens=256)
            report.hf_runs[(batch, threads)] = rate
            report.hf_tokens_per_s[batch] = max(rate, report.hf_tokens_per_s.get(batch, 0.0))
            log(f"transformers generate(), batch {batch}, {threads} threads: {rate:8.1f} tokens/s")
    return report


def format_report(report: DecodeReport, *, command: str) -> str:
    one = report.stream_tokens_per_s.get(1, 0.0)
    most = max(report.stream_tokens_per_s) if report.stream_tokens_per_s else 1
    first_context, last_context = min(report.token_ms_cached), max(report.token_ms_cached)
    lines = [
        "# Decode benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Melody LM: {report.parameters / 1e6:.2f} M parameters; GPT-2 of the same size: "
        f"{report.hf_parameters / 1e6:.2f} M (same vocabulary, context, width, depth and "
        f"heads; feed-forward width {report.hf_inner} sized to match the parameter count).",
        "",
        "## Tokens per second through Triton (gRPC streaming, continuous batching)",
        "",
        "Each stream is a client that sends its next 16-bar request as soon as the last one "
        f"ends; tokens are counted over {report.windows} windows of "
        f"{report.window_seconds:g} s once every stream is under way, and the median window "
        "is shown. "
        "Triton runs alone on the machine with melody_lm's config.pbtxt settings (2 intra-op "
        "threads, bf16 matrix products from 16 sequences); the client shares its cores.",
        "",
        "| streams | tokens/s | × one stream |",
        "|---:|---:|---:|",
    ]
    for count, rate in report.stream_tokens_per_s.items():
        lines.append(f"| {count} | {rate:.1f} | {rate / one:.2f} |")
    lines += [
        "",
        "## Time per token against context length (in process)",
        "",
        "| context | ms/token, KV cache | ms/token, no cache |",
        "|---:|---:|---:|",
    ]
    for context in report.token_ms_cached:
        lines.append(
            f"| {context} | {report.token_ms_cached[context]:.2f} | "
            f"{report.token_ms_uncached[context]:.2f} |"
        )
    cache_ratio = report.token_ms_cached[last_context] / report.token_ms_cached[first_context]
    hf_one = report.hf_tokens_per_s.get(1, float("nan"))
    hf_most = report.hf_tokens_per_s.get(most, float("nan"))
    lines += [
        "",
        "## transformers generate() on a GPT-2 of the same size",
        "",
        "| batch | torch threads | tokens/s |",
        "|---:|---:|---:|",
        *[
            f"| {batch} | {threads} | {rate:.1f} |"
            for (batch, threads), rate in sorted(report.hf_runs.items())
        ],
        "",
        "The ratios below take the faster thread setting of each batch size.",
        "",
        "## Ratios (targets on the 2-core CPU)",
        "",
        f"- {most} streams / 1 stream: **{report.stream_tokens_per_s[most] / one:.2f}×** "
        "(target ≥ 8×)",
        f"- time per token at {last_context + 1 if last_context == 1023 else last_context} "
        f"context / at {first_context}, with the KV cache: **{cache_ratio:.2f}×** (target ≤ 1.5×)",
        f"- Triton, 1 stream / generate() batch 1: **{one / hf_one:.2f}×** (target ≥ 1.5×)",
        f"- Triton, {most} streams / generate() batch {most}: "
        f"**{report.stream_tokens_per_s[most] / hf_most:.2f}×**",
    ]
    return "\n".join(lines) + "\n"
