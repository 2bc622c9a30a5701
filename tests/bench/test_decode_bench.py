"""The decode benchmark's report: ratios come from the numbers of one run, and the baseline
is the faster thread setting of transformers' generate()."""

from cantus.bench.decode import DecodeReport, format_report


def test_report_takes_ratios_from_its_own_numbers() -> None:
    report = DecodeReport(
        parameters=3_470_000,
        stream_tokens_per_s={1: 800.0, 32: 7200.0},
        token_ms_cached={64: 1.0, 1023: 1.2},
        token_ms_uncached={64: 3.0, 1023: 40.0},
        hf_tokens_per_s={1: 500.0, 32: 4000.0},
        hf_runs={(1, 1): 450.0, (1, 2): 500.0, (32, 1): 3000.0, (32, 2): 4000.0},
        hf_parameters=3_470_000,
    )
    text = format_report(report, command="cantus bench decode")
    assert "32 streams / 1 stream: **9.00×**" in text
    assert "with the KV cache: **1.20×**" in text
    assert "generate() batch 1: **1.60×**" in text
    assert "| 1 | 1 | 450.0 |" in text and "| 32 | 2 | 4000.0 |" in text
    assert text.startswith("# Decode benchmark") and "Command: `cantus bench decode`" in text


def test_the_gpt2_baseline_matches_the_parameter_count_of_a_one_kv_head_model() -> None:
    from transformers import GPT2LMHeadModel

    from cantus.bench.decode import gpt2_config_of_same_size
    from cantus.melody.model import MelodyLM, MelodyLMConfig

    config = MelodyLMConfig(
        vocab_size=201, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=128, n_kv_heads=1
    )
    parameters = MelodyLM(config).n_parameters()
    gpt2_config = gpt2_config_of_same_size(config, parameters)
    gpt2_parameters = sum(p.numel() for p in GPT2LMHeadModel(gpt2_config).parameters())
    assert (gpt2_config.n_embd, gpt2_config.n_layer, gpt2_config.n_head) == (64, 2, 4)
    assert gpt2_config.n_inner < config.d_ff  # shared keys and values: a narrower MLP
    # within one feed-forward unit (one unit adds 2 * d_model + 1 weights per layer)
    assert abs(gpt2_parameters - parameters) <= config.n_layers * (2 * config.d_model + 1) / 2
