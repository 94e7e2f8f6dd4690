"""Log-likelihood of continuations given contexts, over the latent KV cache.

Requests that share a context (the choices of a multiple-choice question) share one prefill:
the context is run once, its cache rows are copied per continuation, and only the
continuation tokens run again. Contexts of a batch are left-padded together (positions and
a key mask hide the padding, as in generation); the continuations of all of them then run in
one more forward pass, right-padded (padding sits after every real token, so the causal mask
already hides it).

The result for each request is (sum of log-probabilities of the continuation tokens,
whether every continuation token is the argmax), the pair lm-eval's `loglikelihood` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from k2eval.models.reference.generation import LeftPadded
from k2eval.models.reference.modeling import DeepseekV3Model, LatentCache

TokenRequest = tuple[tuple[int, ...], tuple[int, ...]]
"""(context token ids, continuation token ids); both non-empty."""


@dataclass(frozen=True)
class _Group:
    context: tuple[int, ...]
    members: list[int]
    """Indices of the requests with this context."""


def truncate(context: tuple[int, ...], continuation: tuple[int, ...],
             window: int) -> tuple[int, ...]:
    """Drop the oldest context tokens so that the model sees at most `window` input tokens
    (as lm-eval's `hf` model does); the continuation itself is never cut."""
    if len(continuation) > window:
        raise ValueError(f"the continuation has {len(continuation)} tokens; the model's context "
                         f"holds {window}")
    keep = window + 1 - len(continuation)
    return context[-keep:] if len(context) > keep else context


@torch.inference_mode()
def score_continuations(model: DeepseekV3Model, requests: list[TokenRequest],
                        groups_per_batch: int = 16) -> list[tuple[float, bool]]:
    """(log-likelihood, is greedy) for every request, in request order."""
    window = model.config.max_position_embeddings
    by_context: dict[tuple[int, ...], _Group] = {}
    for i, (context, continuation) in enumerate(requests):
        if not context or not continuation:
            raise ValueError("a log-likelihood request needs a non-empty context and continuation")
        context = truncate(context, continuation, window)
        by_context.setdefault(context, _Group(context, [])).members.append(i)
    # Longest first: similar lengths share a batch, and memory trouble shows up at once.
    groups = sorted(by_context.values(), key=lambda g: -len(g.context))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    for start in range(0, len(groups), groups_per_batch):
        batch = groups[start:start + groups_per_batch]
        for index, result in zip((i for g in batch for i in g.members),
                                 _score_batch(model, batch, requests), strict=True):
            results[index] = result
    return results


def _score_batch(model: DeepseekV3Model, groups: list[_Group],
                 requests: list[TokenRequest]) -> list[tuple[float, bool]]:
    device = model.device
    continuations = [requests[i][1] for g in groups for i in g.members]
    owner = torch.tensor([n for n, g in enumerate(groups) for _ in g.members], device=device)
    tail = max(len(c) for c in continuations) - 1  # continuation tokens fed after the context

    # 1. Every distinct context once, left-padded to a common width.
    batch = LeftPadded.of([g.context for g in groups], device)
    ids, positions, mask, pads, width = batch.ids, batch.positions, batch.mask, batch.pads, batch.width
    cache = LatentCache.allocate(model.config, len(groups), width + max(tail, 0), model.dtype, device)
    first = model(ids, positions, cache, mask, last_only=True)[:, -1].float().log_softmax(-1)
    first = first.index_select(0, owner)  # predicts each continuation's first token

    # 2. All continuations (but their last token) over copies of their context's cache.
    rest = None
    if tail > 0:
        cache.layers = [t.index_select(0, owner) for t in cache.layers]
        row_pads = pads.index_select(0, owner)
        ids = torch.zeros(len(continuations), tail, dtype=torch.long, device=device)
        for row, c in enumerate(continuations):
            if len(c) > 1:
                ids[row, :len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
        steps = torch.arange(tail, device=device)
        positions = (width - row_pads)[:, None] + steps[None, :]
        keys = torch.arange(width + tail, device=device)
        visible = (keys[None, None, :] >= row_pads[:, None, None]) & (
            keys[None, None, :] <= width + steps[None, :, None])
        rest = model(ids, positions, cache, visible[:, None]).float().log_softmax(-1)

    out: list[tuple[float, bool]] = []
    for row, c in enumerate(continuations):
        target = torch.tensor(c, dtype=torch.long, device=device)
        logprobs = first[row][None]
        if len(c) > 1:
            assert rest is not None
            logprobs = torch.cat([logprobs, rest[row, :len(c) - 1]])
        picked = logprobs.gather(-1, target[:, None]).squeeze(-1)
        out.append((float(picked.sum()), bool((logprobs.argmax(-1) == target).all())))
    return out
