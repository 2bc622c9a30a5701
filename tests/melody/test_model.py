"""The melody transformer: the KV-cached batched decoding matches the full forward pass."""

from __future__ import annotations

import pytest
import torch

from cantus.melody.model import KVCache, MelodyLM, MelodyLMConfig

torch.set_num_threads(1)


def _model(max_len: int = 64, n_kv_heads: int | None = None) -> MelodyLM:
    torch.manual_seed(0)
    config = MelodyLMConfig(
        vocab_size=50,
        d_model=32,
        n_layers=2,
        n_heads=4,
        d_ff=64,
        max_len=max_len,
        dropout=0.0,
        n_kv_heads=n_kv_heads,
    )
    return MelodyLM(config).eval()


@pytest.mark.parametrize("n_kv_heads", [None, 2, 1], ids=["multi-head", "grouped", "multi-query"])
def test_cached_batched_decoding_matches_the_full_forward(n_kv_heads) -> None:
    model = _model(n_kv_heads=n_kv_heads)
    generator = torch.Generator().manual_seed(1)
    lengths = [5, 12, 1, 20]  # prompt lengths differ per sequence
    extra = 9  # tokens decoded one step at a time after the prompt
    sequences = [torch.randint(1, 50, (n + extra,), generator=generator) for n in lengths]
    full = [model(seq[None])[0] for seq in sequences]

    cache = KVCache(model.config, max_batch=6)
    slots = torch.tensor([4, 0, 2, 5])  # arbitrary, non-contiguous slots
    for i, (n, slot) in enumerate(zip(lengths, slots.tolist(), strict=True)):
        logits = model.prefill(sequences[i][:n], cache, slot)
        torch.testing.assert_close(logits, full[i][n - 1], atol=1e-4, rtol=0)
    for step in range(extra):
        # sequences leave the batch at different times: the short one stops after 4 steps
        active = [i for i in range(len(lengths)) if step < (4 if i == 2 else extra)]
        tokens = torch.stack([sequences[i][lengths[i] + step] for i in active])
        logits = model.decode_step(tokens, cache, slots[active])
        for row, i in enumerate(active):
            torch.testing.assert_close(logits[row], full[i][lengths[i] + step], atol=1e-4, rtol=0)
    assert cache.lengths[slots].tolist() == [5 + extra, 12 + extra, 1 + 4, 20 + extra]


def test_slot_reuse_after_reset_forgets_the_old_sequence() -> None:
    model = _model()
    cache = KVCache(model.config, max_batch=2)
    model.prefill(torch.arange(1, 30), cache, 0)
    cache.reset(0)
    fresh = torch.tensor([3, 4, 5])
    logits = model.prefill(fresh[:2], cache, 0)
    step = model.decode_step(fresh[2:], cache, torch.tensor([0]))
    full = model(fresh[None])[0]
    torch.testing.assert_close(logits, full[1], atol=1e-4, rtol=0)
    torch.testing.assert_close(step[0], full[2], atol=1e-4, rtol=0)


def test_default_config_is_a_few_million_parameters() -> None:
    n_parameters = MelodyLM(MelodyLMConfig.default(vocab_size=201)).n_parameters()
    assert 2e6 < n_parameters < 5e6  # float32: well under the 20 MB checkpoint budget
