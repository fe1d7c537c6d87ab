"""Batched generation and option scoring with transformers (left padding), on CPU or GPU."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np

from ...errors import DvmapError
from ..models import ModelSpec


class TransformersBackend:
    def __init__(self, path: str, spec: ModelSpec, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch, self.spec = torch, spec
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        except OSError as exc:
            raise DvmapError(f"{path}: not a loadable model directory ({exc})") from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.device == "cpu":
            input_major_weights(self.model)

    def close(self) -> None:
        """Nothing to shut down: the model is freed with this object."""

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        gen = self.spec.generation
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True,
                                                    **self.spec.chat_template_kwargs) for c in conversations]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        self.torch.manual_seed(gen.seed)
        greedy = gen.temperature == 0
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": gen.temperature}
        per_item = 1 if greedy else gen.samples  # greedy samples are all the same: generate once, repeat
        with self.torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=gen.max_new_tokens, num_return_sequences=per_item,
                                      pad_token_id=self.tokenizer.pad_token_id, **sampling)
        new = out[:, batch["input_ids"].shape[1]:]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        outputs = [decoded[i * per_item:(i + 1) * per_item] for i in range(len(conversations))]
        return [o * gen.samples if greedy else o for o in outputs]


    def score(self, conversations: list[list[dict]], continuations: list[list[str]]) -> list[list[tuple[float, int]]]:
        """Per conversation, per continuation: (summed log-probability of the continuation's tokens as the start of
        the assistant's reply, its token count); see :func:`score_conversations`."""
        return score_conversations(self.model, self.tokenizer, conversations, continuations,
                                   self.spec.chat_template_kwargs, self.spec.name)


#: The cost of scoring a group of prompts apart (two more forward passes), in prompt tokens' worth of compute: a
#: rough CPU figure for small models, used only to decide how a batch splits into groups (the scores are the same).
GROUP_OVERHEAD = 24


def score_conversations(model, tokenizer, conversations: list[list[dict]], continuations: list[list[str]],
                        chat_template_kwargs: dict | None = None, name: str = "model"
                        ) -> list[list[tuple[float, int]]]:
    """Per conversation, per continuation: (summed log-probability of the continuation's tokens as the start of
    the assistant's reply, its token count), with any causal LM of transformers (a model being trained too: the
    caller sets eval mode).

    No generation: the batch is split into runs of consecutive prompts that share a long token prefix (the system
    prompt, and a profile when one profile's items are adjacent; :func:`_prefix_groups`), and each run is scored in
    one forward pass (:func:`_score_group`)."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True,
                                           **(chat_template_kwargs or {})) for c in conversations]
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    tokens = {text: tokenizer(text, add_special_tokens=False)["input_ids"]
              for options in continuations for text in options}
    if any(not ids for ids in tokens.values()):
        raise DvmapError(f"models.{name}: an option tokenises to nothing")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: list = [None] * len(prompts)
    for group in _prefix_groups(prompts):
        scored = _score_group(model, [prompts[i] for i in group],
                              [[tokens[o] for o in continuations[i]] for i in group], pad)
        for i, item in zip(group, scored):
            scores[i] = item
    return scores


def _score_group(model, prompts: list[list[int]], continuations: list[list[list[int]]], pad: int
                 ) -> list[list[tuple[float, int]]]:
    """Score one run of prompts: their common token prefix is encoded once and its KV cache shared by every row;
    each row holds the rest of a prompt followed by all of its continuations, and a 4D attention mask lets every
    continuation token see the prompt and its own continuation's earlier tokens only (positions restart after the
    prompt for each continuation), so each continuation is scored as if it alone followed its prompt."""
    import torch

    shared = _common_prefix(prompts)
    rows = [_packed_row(prompt[shared:], options, shared) for prompt, options in zip(prompts, continuations)]
    width = max(len(row.ids) for row in rows)
    tail = max(len(row.ids) - len(row.prompt) + 1 for row in rows)  # the logits needed: last prompt token on
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    allowed = torch.zeros((len(rows), width, shared + width), dtype=torch.bool)
    allowed[:, :, shared:] = torch.eye(width, dtype=torch.bool)   # padding attends to itself only
    for i, row in enumerate(rows):  # left padding: every row ends at column width - 1
        start = width - len(row.ids)
        ids[i, start:] = torch.tensor(row.ids)
        positions[i, start:] = torch.tensor(row.positions)
        allowed[i, start:, :shared] = True                               # the shared prefix
        allowed[i, start:, shared + start:] = torch.from_numpy(row.allowed)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
    accepted = inspect.signature(model.forward).parameters
    keep = {"logits_to_keep": tail} if "logits_to_keep" in accepted else {}
    with torch.inference_mode():
        cache = None
        if shared:
            argument = "cache" if "cache" in accepted else "past_key_values"     # renamed in transformers 5
            cache = model(input_ids=torch.tensor([prompts[0][:shared]], device=device), use_cache=True,
                          **({"logits_to_keep": 1} if keep else {}))[argument]
            cache.batch_repeat_interleave(len(rows))
            keep[argument] = cache
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       use_cache=cache is not None, **keep).logits
    logits = logits[:, -tail:].float()
    scores = []
    for i, row in enumerate(rows):
        offset = width - tail - (width - len(row.ids))  # the row's index of the first kept logit
        logprobs = torch.log_softmax(logits[i], dim=-1)
        scores.append([(float(sum(logprobs[p - offset, t] for p, t in span)), len(span)) for span in row.spans])
    return scores


def _prefix_groups(prompts: list[list[int]]) -> list[list[int]]:
    """The batch's rows cut into runs of consecutive rows that minimise the prompt tokens computed: per run its
    common prefix once, every row's rest padded to the run's longest, plus :data:`GROUP_OVERHEAD` (dynamic
    programming over the cut points; a run's common prefix is the shortest of its first row's with each row)."""
    n = len(prompts)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for begin in range(n):
        common, longest, shortest = len(prompts[begin]), 0, len(prompts[begin])
        for end in range(begin + 1, n + 1):
            row = prompts[end - 1]
            common = min(common, len(os.path.commonprefix([prompts[begin], row])))
            longest, shortest = max(longest, len(row)), min(shortest, len(row))
            shared = min(common, shortest - 1)  # as _common_prefix
            cost = GROUP_OVERHEAD + shared + (end - begin) * (longest - shared)
            if best[begin] + cost < best[end]:
                best[end], cut[end] = best[begin] + cost, begin
    groups, end = [], n
    while end:
        groups.insert(0, list(range(cut[end], end)))
        end = cut[end]
    return groups


def _common_prefix(prompts: list[list[int]]) -> int:
    """The length of the prompts' common token prefix, leaving every prompt at least its last token (the one whose
    logits predict a continuation's first token)."""
    return min(len(os.path.commonprefix(prompts)), min(len(p) for p in prompts) - 1)


@dataclass(frozen=True)
class _PackedRow:
    """A prompt and its continuations in one row: token ids, position ids, the allowed (query, key) pairs, and per
    continuation the (predicting position, token) pairs of its tokens."""

    ids: list[int]
    positions: list[int]
    allowed: np.ndarray
    spans: list[list[tuple[int, int]]]
    prompt: list[int]


def _packed_row(prompt: list[int], continuations: list[list[int]], offset: int = 0) -> _PackedRow:
    """A prompt's tokens after the ``offset`` shared ones (held in the cache), then its continuations."""
    segment = [-1] * len(prompt)
    ids, positions, spans = list(prompt), list(range(offset, offset + len(prompt))), []
    for k, continuation in enumerate(continuations):
        start = len(ids)
        spans.append([(len(prompt) - 1 if j == 0 else start + j - 1, token) for j, token in enumerate(continuation)])
        ids += continuation
        positions += range(offset + len(prompt), offset + len(prompt) + len(continuation))
        segment += [k] * len(continuation)
    segment = np.asarray(segment)
    order = np.arange(len(ids))
    causal = order[None, :] <= order[:, None]
    same = (segment[None, :] == -1) | (segment[None, :] == segment[:, None])
    return _PackedRow(ids, positions, causal & same, spans, prompt)


def input_major_weights(model) -> None:
    """Store every ``nn.Linear`` weight input-major (the transpose made contiguous, viewed back as out x in).

    ``linear`` computes ``x @ W.T``; with W input-major, ``W.T`` is contiguous, and on CPU the fp32 GEMM for a
    few rows (batched decoding) runs about twice as fast as with PyTorch's default output-major weights; the
    values, and so the generated tokens, are unchanged. Tied weights stay tied (they share one Parameter).
    """
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.data = module.weight.data.t().contiguous().t()
