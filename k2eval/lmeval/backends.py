"""What lm-eval asks of a model, answered by k2eval's two backends.

lm-eval's three request types, as async calls over plain strings:

- `loglikelihood([(context, continuation)])` -> [(log p(continuation | context), is greedy)]
- `loglikelihood_rolling([text])` -> [log p(text)]
- `generate([(context, gen_kwargs)])` -> [text]

`ReferenceBackend` runs the reference MoE in process: token-level scoring over its latent KV
cache (`models/reference/scoring.py`, one prefill per distinct context) and batched generation.
Tokenization follows lm-eval's `TemplateLM` for causal models: trailing whitespace of the
context moves to the continuation, the pair is encoded whole and split at the context's
length, an empty context becomes the prefix token (BOS, else EOS), long inputs keep their
newest tokens; rolling windows come from lm-eval's own `get_rolling_token_windows`.

`OpenAIBackend` talks to an OpenAI-compatible endpoint: generation through chat completions
(the context as one user message) or, with `api="completions"`, through `/v1/completions` (the
raw prompt, for base models); stop strings as `stop`, the text cut at the first stop string
as lm-eval does. Log-likelihoods through `/completions` with `echo` and `logprobs`
(vLLM, SGLang and others return prompt log-probabilities that way). An endpoint that does not
is a clear `ConfigError`, never a made-up number.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from k2eval.errors import ConfigError, RetryableModelError
from k2eval.models.base import ChatModel, Completion, Message, Sampling

if TYPE_CHECKING:
    from k2eval.models.reference.runtime import ReferenceRuntime

DEFAULT_MAX_GEN_TOKS = 256
"""lm-eval's default `max_gen_toks` when a task's generation_kwargs give none."""

Complete = Callable[[list[Message], Sampling], Awaitable[Completion]]


def generation_settings(gen_kwargs: dict[str, Any], default_max: int) -> tuple[list[str], int, float, float | None]:
    """(stop strings, max new tokens, temperature, top_p) from lm-eval's generation kwargs."""
    until = gen_kwargs.get("until") or []
    if isinstance(until, str):
        until = [until]
    until = [u for u in until if u]
    max_new = int(gen_kwargs.get("max_gen_toks") or default_max)
    temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0)
    sampled = bool(gen_kwargs.get("do_sample", temperature > 0))
    temperature = temperature if sampled else 0.0
    top_p = gen_kwargs.get("top_p") if sampled else None
    return list(until), max_new, temperature, float(top_p) if top_p is not None else None


def cut_at_stop(text: str, until: list[str]) -> str:
    """The text before the first occurrence of any stop string (lm-eval's post-processing)."""
    for stop in until:
        text = text.split(stop, 1)[0]
    return text


class Backend(ABC):
    name: str

    @abstractmethod
    async def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]: ...

    @abstractmethod
    async def loglikelihood_rolling(self, texts: list[str]) -> list[float]: ...

    @abstractmethod
    async def generate(self, requests: list[tuple[str, dict[str, Any]]],
                       complete: Complete | None = None) -> list[str]:
        """`complete`: the chat call to use for endpoints (e.g. an attempt's metered `chat`)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


# ---------------------------------------------------------------- reference model


class ReferenceBackend(Backend):
    """The reference MoE; all model work runs on one worker thread, in batches."""

    GATHER_S = 0.002

    def __init__(self, runtime: ReferenceRuntime, *, batch_size: int = 16,
                 add_bos_token: bool = False, max_gen_toks: int = DEFAULT_MAX_GEN_TOKS) -> None:
        self.runtime = runtime
        self.tokenizer = runtime.tokenizer
        self.name = f"reference:{runtime.checkpoint}"
        self.batch_size = batch_size
        self.add_bos_token = add_bos_token
        self.max_gen_toks = max_gen_toks
        self.window = runtime.model.config.max_position_embeddings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k2eval-lmeval")
        self._pending: dict[Callable[..., Any], list[tuple[list[Any], asyncio.Future[list[Any]]]]] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._model_busy = asyncio.Lock()

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_id
        return bos if bos is not None else self.tokenizer.eos_id

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        return [self.prefix_token_id, *ids] if self.add_bos_token and self.tokenizer.bos_id is not None else ids

    def encode_pair(self, context: str, continuation: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """lm-eval's TemplateLM rule for causal models (see the module docstring)."""
        if not context:
            cont = self.tokenizer.encode(continuation)
            if cont and cont[0] == self.prefix_token_id:
                return tuple(cont[:1]), tuple(cont[1:])
            return (self.prefix_token_id,), tuple(cont)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return tuple(ctx), tuple(whole[len(ctx):])

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _together(self, work: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
        """`work(items)` on the worker thread, batched with the items of concurrent callers
        (k2eval's engine solves one document per call, many at once): callers arriving while
        the model is busy, or within `GATHER_S`, share the next batch of the same work."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        queue = self._pending.setdefault(work, [])
        queue.append((items, future))
        if len(queue) == 1:
            flush = loop.create_task(self._flush(work))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self, work: Callable[[list[Any]], list[Any]]) -> None:
        await asyncio.sleep(self.GATHER_S)
        async with self._model_busy:
            batch = self._pending.pop(work, [])
            try:
                results = await self._in_worker(work, [x for xs, _ in batch for x in xs])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        start = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[start:start + len(items)])
            start += len(items)

    def _score_tokens(self, requests: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> list[tuple[float, bool]]:
        from k2eval.models.reference.scoring import score_continuations

        return score_continuations(self.runtime.model, requests, groups_per_batch=self.batch_size)

    async def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        pairs = [self.encode_pair(c, x) for c, x in requests]
        scorable = [i for i, (_, cont) in enumerate(pairs) if cont]
        scored = await self._together(self._score_tokens, [pairs[i] for i in scorable])
        out = [(0.0, True)] * len(pairs)  # an empty continuation has probability one
        for i, result in zip(scorable, scored, strict=True):
            out[i] = result
        return out

    async def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        windows: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        owners: list[int] = []
        for n, text in enumerate(texts):
            for context, target in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.encode(text), prefix_token=self.prefix_token_id,
                    max_seq_len=self.window, context_len=1)):
                windows.append((tuple(context), tuple(target)))
                owners.append(n)
        scored = await self._together(self._score_tokens, windows)
        totals = [0.0] * len(texts)
        for owner, (logprob, _) in zip(owners, scored, strict=True):
            totals[owner] += logprob
        return totals

    def _generate(self, requests: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Generations for `requests`, decoded together (`max_batch_size` rows at a time)."""
        from k2eval.models.reference.generation import GenerationRequest

        prepared = []
        for context, gen_kwargs in requests:
            until, max_new, temperature, top_p = generation_settings(gen_kwargs, self.max_gen_toks)
            max_new = min(max_new, self.window - 1)
            prompt = self.encode(context)[-(self.window - max_new):] or [self.prefix_token_id]
            prepared.append((GenerationRequest(tuple(prompt), max_new, temperature, top_p,
                                               seed=gen_kwargs.get("seed"), stop=tuple(until)), until))
        results = self.runtime.generator.generate([r for r, _ in prepared])
        return [cut_at_stop(result.text, until) for result, (_, until) in zip(results, prepared, strict=True)]

    async def generate(self, requests: list[tuple[str, dict[str, Any]]],
                       complete: Complete | None = None) -> list[str]:
        return await self._together(self._generate, requests)

    def describe(self) -> dict[str, Any]:
        return {**self.runtime.describe(), "add_bos_token": self.add_bos_token,
                "batch_size": self.batch_size}

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)


# ---------------------------------------------------------------- OpenAI-compatible endpoints


class OpenAIBackend(Backend):
    """An OpenAI-compatible endpoint. Generation goes through chat completions (`model`, k2eval's
    retrying chat model, unless a call passes its own `complete`), or with
    `api="completions"` through `/v1/completions`: the raw prompt, no chat template, as
    lm-eval's `local-completions` sends it (the path for base models)."""

    APIS = ("chat", "completions")

    def __init__(self, model: ChatModel, *, base_url: str, model_name: str, api_key_env: str,
                 concurrency: int = 32, max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
                 timeout_s: float = 600.0, api: str = "chat") -> None:
        if api not in self.APIS:
            raise ConfigError(f"api {api!r} is not one of {', '.join(self.APIS)}")
        self.api = api
        self.model = model
        self.name = f"openai:{model_name}"
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.api_key_env = api_key_env
        self._complete: Complete = lambda messages, sampling: model.complete(messages, None, sampling)
        self._gate = asyncio.Semaphore(concurrency)
        self.max_gen_toks = max_gen_toks
        self.timeout_s = timeout_s
        self._client: Any = None

    async def generate(self, requests: list[tuple[str, dict[str, Any]]],
                       complete: Complete | None = None) -> list[str]:
        call = complete or self._complete

        async def one(context: str, gen_kwargs: dict[str, Any]) -> str:
            until, max_new, temperature, top_p = generation_settings(gen_kwargs, self.max_gen_toks)
            sampling = Sampling(max_tokens=max_new, temperature=temperature, top_p=top_p,
                                stop=tuple(until[:4]))
            async with self._gate:
                if self.api == "completions":
                    text = await self._complete_raw(context, sampling)
                else:
                    text = (await call([{"role": "user", "content": context}], sampling)).text or ""
            return cut_at_stop(text, until)

        return list(await asyncio.gather(*(one(c, g) for c, g in requests)))

    async def _complete_raw(self, prompt: str, sampling: Sampling) -> str:
        import openai

        try:
            resp = await self._completions_client().completions.create(
                model=self.model_name, prompt=prompt, max_tokens=sampling.max_tokens,
                temperature=sampling.temperature, stop=list(sampling.stop) or None,
                **({"top_p": sampling.top_p} if sampling.top_p is not None else {}))
        except openai.NotFoundError:
            raise ConfigError(f"{self.base_url} has no /completions route: use api=chat") from None
        except openai.APIError as exc:
            raise RetryableModelError(f"{self.base_url}/completions: {exc}") from exc
        return resp.choices[0].text if resp.choices else ""

    def _completions_client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(api_key=os.environ.get(self.api_key_env) or "EMPTY",
                                              base_url=self.base_url, max_retries=3,
                                              timeout=self.timeout_s)
        return self._client

    def _no_prompt_logprobs(self, why: str) -> ConfigError:
        return ConfigError(
            f"{self.base_url} does not return prompt log-probabilities ({why}), so lm-eval's "
            "loglikelihood requests (multiple-choice and perplexity tasks) cannot be scored on it: "
            "serve the model with an engine whose /v1/completions honours echo+logprobs "
            "(vLLM, SGLang), or run generation tasks only")

    async def _prompt_logprobs(self, prompt: str) -> tuple[list[float | None], list[int], list[Any]]:
        import openai

        try:
            async with self._gate:
                resp = await self._completions_client().completions.create(
                    model=self.model_name, prompt=prompt, max_tokens=1, temperature=0.0,
                    echo=True, logprobs=1)
        except openai.NotFoundError:
            raise self._no_prompt_logprobs("no /completions route") from None
        except openai.BadRequestError as exc:
            raise self._no_prompt_logprobs(f"echo+logprobs rejected: {exc.message}") from None
        except openai.APIConnectionError as exc:
            raise ConfigError(f"cannot reach {self.base_url}: {exc}") from None
        choice = resp.choices[0] if resp.choices else None
        lp = getattr(choice, "logprobs", None)
        if lp is None or not lp.token_logprobs or lp.text_offset is None:
            raise self._no_prompt_logprobs("the reply holds no echoed prompt logprobs")
        # The last entry is the generated token (max_tokens=1): not part of the prompt.
        n = len(lp.token_logprobs) - 1
        return list(lp.token_logprobs[:n]), list(lp.text_offset[:n]), list((lp.top_logprobs or [])[:n])

    async def _score(self, context: str, continuation: str) -> tuple[float, bool]:
        """The continuation's tokens are those ending after the context (after moving the
        context's trailing whitespace to the continuation, as lm-eval does before tokenizing):
        a token straddling the boundary counts as the continuation's."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        logprobs, offsets, tops = await self._prompt_logprobs(context + continuation)
        start = len(context)
        ends = [*offsets[1:], len(context + continuation)]
        total, greedy = 0.0, True
        for i, (lp, end) in enumerate(zip(logprobs, ends, strict=True)):
            if end <= start:
                continue
            if lp is None:
                raise self._no_prompt_logprobs("a continuation token has no logprob")
            total += lp
            top = tops[i] if i < len(tops) and tops[i] else None
            if top:
                greedy = greedy and max(top.values()) <= lp + 1e-9
        return total, greedy

    async def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return list(await asyncio.gather(*(self._score(c, x) for c, x in requests)))

    async def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Log p(text) given nothing before it: every scored token, the first one excepted
        (it has no context), as the endpoint scores the whole text at once."""
        results = await asyncio.gather(*(self._prompt_logprobs(t) for t in texts))
        return [sum(lp for lp in logprobs if lp is not None) for logprobs, _, _ in results]

    def describe(self) -> dict[str, Any]:
        return {"scheme": "openai", "model": self.model_name, "base_url": self.base_url,
                "api_key_env": self.api_key_env}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


# ---------------------------------------------------------------- from k2eval's models


async def backend_for(model: ChatModel, *, batch_size: int = 16, add_bos_token: bool = False,
                      max_gen_toks: int = DEFAULT_MAX_GEN_TOKS, concurrency: int = 32,
                      api: str = "chat") -> Backend:
    """The backend behind a k2eval chat model (unwrapping the retry layer)."""
    from k2eval.models.openai_api import OpenAIChatModel
    from k2eval.models.reference.chat_model import ReferenceChatModel

    inner: Any = model
    while hasattr(inner, "inner"):
        inner = inner.inner
    if isinstance(inner, ReferenceChatModel):
        return ReferenceBackend(await inner.runtime(), batch_size=batch_size,
                                add_bos_token=add_bos_token, max_gen_toks=max_gen_toks)
    if isinstance(inner, OpenAIChatModel):
        return OpenAIBackend(model, base_url=inner.base_url, model_name=inner.name,
                             api_key_env=inner.spec.api_key_env, concurrency=concurrency, api=api, max_gen_toks=max_gen_toks,
                             timeout_s=inner.spec.request_timeout_s)
    raise ConfigError(f"model {getattr(model, 'name', model)!r} has no lm-eval backend "
                      "(use openai:<name> or reference:<checkpoint-dir>)")
