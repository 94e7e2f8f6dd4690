"""Batched generation over the latent KV cache: greedy or temperature/top-p sampling with a
seed, stopping on stop tokens, stop strings or `max_new_tokens`.

A `DecodeBatch` holds the sequences decoding together: prompts of different lengths are
left-padded, every row has its own positions and a key mask hiding its padding; finished rows
leave the batch (and the cache) at once and new sequences join between steps.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from k2eval.models.reference.modeling import DeepseekV3Model, LatentCache
from k2eval.models.reference.tokenizer import Tokenizer


@dataclass(frozen=True)
class LeftPadded:
    """Token sequences left-padded to one width for a batched prefill: ids, positions counted
    from each sequence's first real token, and the causal mask that hides the padding (None
    when nothing is padded)."""

    ids: torch.Tensor
    positions: torch.Tensor
    mask: torch.Tensor | None
    pads: torch.Tensor
    width: int

    @classmethod
    def of(cls, sequences: list[list[int]] | list[tuple[int, ...]], device: torch.device
           ) -> LeftPadded:
        width = max(len(seq) for seq in sequences)
        pads = torch.tensor([width - len(seq) for seq in sequences], device=device)
        ids = torch.zeros(len(sequences), width, dtype=torch.long, device=device)
        for row, seq in enumerate(sequences):
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        slots = torch.arange(width, device=device)
        positions = (slots[None, :] - pads[:, None]).clamp(min=0)
        mask = None
        if bool(pads.any()):
            causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
            mask = ((causal[None] & (slots[None, :] >= pads[:, None])[:, None, :])
                    | torch.eye(width, dtype=torch.bool, device=device))[:, None]
        return cls(ids, positions, mask, pads, width)


class ContextLengthError(ValueError):
    """The prompt does not fit the model's context window."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: tuple[int, ...]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class GenerationResult:
    tokens: list[int] = field(default_factory=list)
    """Generated tokens, without the stop token that ended generation (if any)."""
    text: str = ""
    finish_reason: str = "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    """Tokens sampled, the terminating stop token included."""


class Generator:
    def __init__(self, model: DeepseekV3Model, tokenizer: Tokenizer,
                 stop_token_ids: tuple[int, ...] | None = None, max_batch_size: int = 16) -> None:
        self.model = model
        self.tokenizer = tokenizer
        if stop_token_ids is None:
            im_end = tokenizer.token_id("<|im_end|>")
            stop_token_ids = tuple(t for t in (tokenizer.eos_id, im_end) if t is not None)
        self.stop_token_ids = frozenset(stop_token_ids)
        self.max_batch_size = max_batch_size
        self.context = model.config.max_position_embeddings

    def check(self, request: GenerationRequest) -> None:
        if not request.prompt:
            raise ValueError("the prompt is empty")
        if len(request.prompt) >= self.context:
            raise ContextLengthError(
                f"the prompt has {len(request.prompt)} tokens; this model's context is "
                f"{self.context} tokens (prompt plus at least one generated token)")
        if request.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if request.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if request.top_p is not None and not 0 < request.top_p <= 1:
            raise ValueError("top_p must lie in (0, 1]")

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Generate for all requests, at most `max_batch_size` sequences at a time; a finished
        sequence's place is taken by the next waiting request at once."""
        for request in requests:
            self.check(request)
        results: dict[object, GenerationResult] = {}
        batch = DecodeBatch(self)
        waiting = list(enumerate(requests))
        while waiting or batch.rows:
            room = self.max_batch_size - len(batch.rows)
            if waiting and room > 0:
                batch.admit([r for _, r in waiting[:room]], [i for i, _ in waiting[:room]])
                waiting = waiting[room:]
            for key, result in batch.step():
                results[key] = result
        return [results[i] for i in range(len(requests))]

    def _accept(self, request: GenerationRequest, result: GenerationResult, token: int,
                budget: int) -> bool:
        """Record one sampled token; False once the sequence is finished."""
        result.completion_tokens += 1
        if token in self.stop_token_ids:
            result.finish_reason = "stop"
            return False
        result.tokens.append(token)
        if request.stop and self._stop_string_in_tail(request, result.tokens):
            result.finish_reason = "stop"
            return False
        if result.completion_tokens >= budget:
            result.finish_reason = "length"
            return False
        return True

    def _stop_string_in_tail(self, request: GenerationRequest, tokens: list[int]) -> bool:
        longest = max(len(s) for s in request.stop)
        tail = self.tokenizer.decode(tokens[-(4 * longest + 4):])
        return any(s in tail for s in request.stop)

    def _finish_text(self, request: GenerationRequest, result: GenerationResult) -> None:
        text = self.tokenizer.decode(result.tokens)
        if request.stop:
            cuts = [i for i in (text.find(s) for s in request.stop) if i >= 0]
            if cuts:
                text = text[:min(cuts)]
                result.finish_reason = "stop"
        result.text = text

    @staticmethod
    def _sample(logits: torch.Tensor, requests: list[GenerationRequest],
                generators: list[torch.Generator]) -> list[int]:
        logits = logits.float()
        greedy = logits.argmax(dim=-1).tolist()
        chosen: list[int] = []
        for row, (request, gen) in enumerate(zip(requests, generators, strict=True)):
            if request.temperature == 0:
                chosen.append(int(greedy[row]))
                continue
            probs = (logits[row] / request.temperature).softmax(dim=-1)
            if request.top_p is not None and request.top_p < 1:
                sorted_probs, order = probs.sort(descending=True)
                outside = sorted_probs.cumsum(0) - sorted_probs > request.top_p
                sorted_probs[outside] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
            chosen.append(int(torch.multinomial(probs, 1, generator=gen).item()))
        return chosen


@dataclass
class _Row:
    request: GenerationRequest
    key: object
    """The caller's handle for this sequence (an index, a future)."""
    rng: torch.Generator
    budget: int
    pad: int
    """Leading cache slots of this row that hold no token."""
    result: GenerationResult


class DecodeBatch:
    """Sequences decoding together over one latent cache, joined by new ones between steps.

    Every row writes its next token at the same slot (`cache.length`); a row whose tokens are
    fewer is left-padded, its positions counted from its first real slot. Joining shifts either
    the running rows or the newcomers right so that both end at the same slot.
    """

    HEADROOM = 64

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.model = generator.model
        self.rows: list[_Row] = []
        self.cache: LatentCache | None = None
        self.logits: torch.Tensor | None = None
        """Next-token logits of every row, [rows, vocab]."""

    @torch.inference_mode()
    def admit(self, requests: list[GenerationRequest], keys: list[object]) -> None:
        """Prefill `requests` (a left-padded batch of their own) and merge them in."""
        device = self.model.device
        batch = LeftPadded.of([r.prompt for r in requests], device)
        cache = LatentCache.allocate(self.model.config, len(requests), batch.width,
                                     self.model.dtype, device)
        logits = self.model(batch.ids, batch.positions, cache, batch.mask, last_only=True)[:, -1]
        rows = [_Row(r, key, torch.Generator(device=device).manual_seed(
                         r.seed if r.seed is not None else random.getrandbits(63)),
                     min(r.max_new_tokens, self.generator.context - len(r.prompt)),
                     batch.width - len(r.prompt), GenerationResult(prompt_tokens=len(r.prompt)))
                for r, key in zip(requests, keys, strict=True)]
        self._merge(rows, cache, logits)

    def _merge(self, rows: list[_Row], cache: LatentCache, logits: torch.Tensor) -> None:
        old_length = self.cache.length if self.cache is not None else 0
        length = max(old_length, cache.length)
        for row in self.rows:
            row.pad += length - old_length
        for row in rows:
            row.pad += length - cache.length
        capacity = length + self.HEADROOM
        merged = LatentCache.allocate(self.model.config, len(self.rows) + len(rows), capacity,
                                      self.model.dtype, self.model.device)
        merged.length = length
        n_old = len(self.rows)
        for layer, target in enumerate(merged.layers):
            if self.cache is not None and n_old:
                target[:n_old, length - old_length:length] = self.cache.layers[layer][:, :old_length]
            target[n_old:, length - cache.length:length] = cache.layers[layer][:, :cache.length]
        self.cache = merged
        self.logits = logits if self.logits is None or not n_old else torch.cat([self.logits, logits])
        self.rows += rows

    def drop(self, abandoned: Callable[[object], bool]) -> None:
        """Remove the rows whose key the caller no longer waits for."""
        keep = [i for i, row in enumerate(self.rows) if not abandoned(row.key)]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.logits = [], None, None
            return
        index = torch.tensor(keep, device=self.model.device)
        assert self.cache is not None and self.logits is not None
        self.cache.keep_rows(index)
        self.logits = self.logits.index_select(0, index)
        self.rows = [self.rows[i] for i in keep]

    @torch.inference_mode()
    def step(self) -> list[tuple[object, GenerationResult]]:
        """Sample one token for every row; retire finished rows (returned with their results)
        and run the model on the tokens of the rest."""
        if not self.rows or self.logits is None or self.cache is None:
            return []
        g = self.generator
        chosen = g._sample(self.logits, [r.request for r in self.rows], [r.rng for r in self.rows])
        finished: list[tuple[object, GenerationResult]] = []
        keep: list[int] = []
        for i, row in enumerate(self.rows):
            if g._accept(row.request, row.result, chosen[i], row.budget):
                keep.append(i)
            else:
                g._finish_text(row.request, row.result)
                finished.append((row.key, row.result))
        if not keep:
            self.rows, self.cache, self.logits = [], None, None
            return finished
        device = self.model.device
        if len(keep) < len(self.rows):
            self.cache.keep_rows(torch.tensor(keep, device=device))
            self.rows = [self.rows[i] for i in keep]
        cache = self.cache
        cache.reserve(cache.length + 1, self.HEADROOM)
        pads = torch.tensor([r.pad for r in self.rows], device=device)
        mask = None
        if bool(pads.any()):
            mask = (torch.arange(cache.length + 1, device=device)[None, :] >= pads[:, None])[:, None, None, :]
        step = torch.tensor([[chosen[i]] for i in keep], dtype=torch.long, device=device)
        self.logits = self.model(step, cache.length - pads[:, None], cache, mask)[:, -1]
        return finished
