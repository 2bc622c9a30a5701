"""``CausalLMScorer``: the lyric scoring interface (``scoring``) answered by any Hugging
Face causal LM (``transformers`` ``AutoModelForCausalLM`` and its tokenizer), so a larger
LM on a GPU node can replace the small LSTMs behind ``lyric_lm`` without touching the
constraint logic: set the model's ``causal_lm_dir`` parameter (``configs/gpu.pbtxt``).

Per context, one forward pass gives the next-token distribution: a candidate of one token
is read off it; candidates of several tokens are scored in batches of forward passes over
context + candidate. A candidate's log probability is the sum over its tokens. English
candidates after a word get a leading space, as byte-pair tokenizers expect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

CANDIDATE_BATCH = 256


class CausalLMScorer:
    def __init__(
        self, model, tokenizer, language: str, *, device: str = "cpu", name: str = "causal_lm"
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.language = language
        self.device = device
        self.version = name
        bos = tokenizer.bos_token_id
        if bos is None:
            bos = (
                tokenizer.cls_token_id
                if tokenizer.cls_token_id is not None
                else tokenizer.eos_token_id
            )
        self.bos = int(bos)

    @classmethod
    def load(cls, directory: str, language: str, *, device: str = "cpu") -> CausalLMScorer:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
        return cls(model, tokenizer, language, device=device, name=f"causal_lm@{directory}")

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _candidate_ids(self, context: str, candidate: str) -> list[int]:
        spaced = (
            self.language == "en" and candidate != "\n" and context and not context.endswith("\n")
        )
        return self._ids((" " if spaced else "") + candidate) or [self.bos]

    @torch.inference_mode()
    def score(self, contexts: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        scores = np.zeros((len(contexts), len(candidates)), dtype=np.float32)
        for row, context in enumerate(contexts):
            context_ids = [self.bos, *self._ids(context)]
            output = self.model(torch.tensor([context_ids], device=self.device), use_cache=True)
            first = torch.log_softmax(output.logits[0, -1].float(), -1).cpu().numpy()
            token_lists = [self._candidate_ids(context, c) for c in candidates]
            longer = []
            for k, ids in enumerate(token_lists):
                scores[row, k] = first[ids[0]]
                if len(ids) > 1:
                    longer.append(k)
            for start in range(0, len(longer), CANDIDATE_BATCH):
                batch = longer[start : start + CANDIDATE_BATCH]
                scores[row, batch] += self._continuations(
                    context_ids, [token_lists[k] for k in batch]
                )
        return scores

    def _continuations(self, context_ids: list[int], token_lists: list[list[int]]) -> np.ndarray:
        """log P(tokens[1:] | context, tokens[0]) for each token list (a full forward pass
        over context + candidate, padded on the right; the model is causal)."""
        width = len(context_ids) + max(len(ids) for ids in token_lists)
        batch = torch.full((len(token_lists), width), self.bos, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for i, ids in enumerate(token_lists):
            sequence = context_ids + ids
            batch[i, : len(sequence)] = torch.tensor(sequence)
            mask[i, : len(sequence)] = 1
        logits = self.model(batch.to(self.device), attention_mask=mask.to(self.device)).logits
        logprobs = torch.log_softmax(logits.float(), -1).cpu()
        out = np.zeros(len(token_lists), dtype=np.float32)
        for i, ids in enumerate(token_lists):
            for j in range(1, len(ids)):
                position = len(context_ids) + j - 1  # predicts token j of the candidate
                out[i] += float(logprobs[i, position, ids[j]])
        return out
