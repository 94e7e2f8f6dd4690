"""Any OpenAI-compatible chat-completions endpoint.

Two transports send the same request body: one aiohttp session (`http_client="aiohttp"`, the
default: a fraction of the SDK's CPU per call and start-up time, see perf/engine_throughput.py)
and the `openai` SDK (`http_client="sdk"`, for endpoints that need its auth or headers; it is
imported only when chosen). Neither retries (the engine's `RetryingChatModel` does), and both
hand every failed HTTP status to one classifier, `classify_status`:

- 408, 409, 425, 429 and 5xx, plus timeouts, dropped connections and malformed bodies:
  `RetryableModelError` (with the server's Retry-After, if any);
- 400/413/422 whose message says the prompt does not fit the context window (OpenAI's
  `context_length_exceeded`, vLLM's and SGLang's wordings): `ContextOverflow`;
- 401/403: `AuthenticationFailed`, which stops the whole run;
- any other 4xx: `FatalModelError`.

`request_timeout_s` bounds the whole call, connect to last byte: a server that trickles its
body a byte at a time is cut at the timeout like one that never answers.

Reasoning (`k2eval.models.reasoning`): the reply's reasoning is taken apart from its answer
under the spec's `reasoning_format`, and `completion_tokens_details.reasoning_tokens` goes into
`Usage.reasoning_tokens`. Requests carry earlier reasoning back under `reasoning_passback`,
`reasoning_effort` when set, and `extra_body` merged in last.

Credentials in the base URL (`http://user:pass@host/v1`) are taken out of the URL the clients
see and sent as HTTP basic auth (`Authorization: Basic ...`, in place of the API key's bearer
token, as curl and httpx do); they appear in nothing k2eval prints or writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from k2eval.errors import (
    AuthenticationFailed,
    ContextOverflow,
    EndpointUnreachable,
    FatalModelError,
    K2EvalError,
    RetryableModelError,
    UserError,
)
from k2eval.models.base import Completion, Message, Sampling, ToolCall, ToolSchema, Usage
from k2eval.models.reasoning import outgoing_messages, split_reasoning
from k2eval.spec import REDACTED, ModelSpec, redact_url_credentials, split_url_credentials

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_TOKENS_NOTE = ("sent as the request's max_tokens and enforced by the endpoint; "
                   "OpenAI-compatible servers count reasoning tokens against it (they are "
                   "part of completion_tokens)")
_RETRYABLE_STATUS = {408, 409, 425, 429}
_OVERFLOW_STATUS = {400, 413, 422}
_OVERFLOW_CODES = {"context_length_exceeded", "string_above_max_length"}
# OpenAI: "This model's maximum context length is 8192 tokens. However, your messages resulted
# in ..."; vLLM: the same, or "The decoder prompt (length N) is longer than the maximum model
# length of M", "Input prompt (N tokens) is too long"; SGLang: "The input (N tokens) is longer
# than the model's context length (M tokens)", "Requested token count exceeds the model's
# maximum context length"; Anthropic-style gateways: "prompt is too long".
CONTEXT_OVERFLOW = re.compile(
    r"maximum context length|context[ _]length[ _]exceeded|context window"
    r"|longer than the (?:model's context length|maximum model length)"
    r"|exceeds? (?:the )?(?:model's )?(?:maximum )?context length"
    r"|(?:input|prompt)(?: \(\d+ tokens\))? is too long", re.IGNORECASE)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_fields(body: str) -> tuple[str, str]:
    """(message, code) from an error body: {"error": {...}}, vLLM's flat {"object": "error",
    "message": ...}, FastAPI's {"detail": ...}, or plain text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or json.dumps(err)[:300]
            return str(message), str(err.get("code") or err.get("type") or "")
        return str(err), ""
    return body[:300], ""


def classify_status(status: int, body: str, headers: Mapping[str, str] | None,
                    endpoint: str) -> K2EvalError:
    """The error for a failed HTTP status, the same for every transport (module docstring)."""
    message, code = _error_fields(body)
    text = f"HTTP {status}: {' '.join(message.split())[:300]}"
    if status in _RETRYABLE_STATUS or status >= 500:
        return RetryableModelError(text, status=status, retry_after=retry_after(headers))
    if status in (401, 403):
        return AuthenticationFailed(f"{endpoint} rejected the credentials ({text}): check the API "
                                    "key and the base URL", status=status)
    if status in _OVERFLOW_STATUS and (code in _OVERFLOW_CODES or CONTEXT_OVERFLOW.search(message)):
        return ContextOverflow(f"context window exceeded: {text}", status=status)
    return FatalModelError(text, status=status)


class _Transport(Protocol):
    async def post(self, body: dict[str, Any]) -> Any:
        """The decoded JSON of POST /chat/completions, or a classified `ModelError`."""

    async def probe(self, timeout_s: float) -> int:
        """The HTTP status of GET /models; `EndpointUnreachable` when nothing answers."""

    async def aclose(self) -> None: ...


def _unreachable(endpoint: str, reason: object) -> EndpointUnreachable:
    return EndpointUnreachable(f"cannot reach {endpoint} ({reason}): is the server running? "
                               "Check --base-url / OPENAI_BASE_URL")


class _AiohttpTransport:
    """POST /chat/completions on one aiohttp session (created on first use, in the loop).

    The body is encoded once with `json.dumps` and the reply decoded from bytes, so no charset
    detection or per-request header merging runs on the hot path."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float,
                 endpoint: str) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/chat/completions"
        self.headers = {**headers, "Content-Type": "application/json"}
        self.timeout_s = timeout_s
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def post(self, body: dict[str, Any]) -> Any:
        try:
            async with self._open().post(self.url, data=json.dumps(body).encode()) as resp:
                data = await resp.read()
        except TimeoutError:
            raise RetryableModelError("request timed out") from None
        except aiohttp.ClientError as exc:
            raise RetryableModelError(f"connection error: {exc}") from None
        if resp.status >= 400:
            raise classify_status(resp.status, data.decode("utf-8", "replace"), resp.headers,
                                  self.endpoint)
        try:
            return json.loads(data)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise RetryableModelError(f"malformed response: {exc}") from None

    async def probe(self, timeout_s: float) -> int:
        try:
            async with self._open().get(f"{self.base_url}/models",
                                        timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                await resp.read()
                return resp.status
        except TimeoutError:
            raise _unreachable(self.endpoint, "timed out") from None
        except aiohttp.ClientError as exc:
            raise _unreachable(self.endpoint, exc) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _SdkTransport:
    """POST through the `openai` SDK's low-level `post`: its transport, auth and error types,
    without the request-param transformation and response-model construction, which cost
    more CPU per call than everything else in the harness together. The SDK is imported here,
    so runs on the default transport never load it."""

    def __init__(self, base_url: str, key: str, headers: dict[str, str], timeout_s: float,
                 endpoint: str) -> None:
        from openai import AsyncOpenAI, DefaultAioHttpClient

        try:  # the SDK's HTTP layer: `httpx2` in recent releases, `httpx` before
            import httpx2 as httpx
        except ImportError:  # pragma: no cover
            import httpx  # type: ignore[no-redef]

        # Keep every connection alive: the SDK's default pool keeps only 100 idle connections,
        # so above 100 concurrent calls it reconnects on every request.
        http_client = DefaultAioHttpClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))
        self.client: AsyncOpenAI = AsyncOpenAI(
            api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s,
            http_client=http_client, default_headers=headers)
        self.endpoint = endpoint

    async def post(self, body: dict[str, Any]) -> Any:
        import openai

        try:
            return await self.client.post("/chat/completions", body=body, cast_to=object)
        except openai.APIStatusError as exc:
            raise classify_status(exc.status_code, exc.response.text, exc.response.headers,
                                  self.endpoint) from None
        except openai.APITimeoutError:
            raise RetryableModelError("request timed out") from None
        except openai.APIConnectionError as exc:
            raise RetryableModelError(f"connection error: {exc.__cause__ or exc}") from None
        except (openai.OpenAIError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise RetryableModelError(f"malformed response: {type(exc).__name__}: {exc}") from None

    async def probe(self, timeout_s: float) -> int:
        import openai

        try:
            await self.client.models.list(timeout=timeout_s)
        except openai.APIConnectionError as exc:  # timeouts included
            raise _unreachable(self.endpoint, exc.__cause__ or exc) from None
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    async def aclose(self) -> None:
        await self.client.close()


class OpenAIChatModel:
    """`openai:<model-name>`: chat completions on `base_url` with the key from `api_key_env`."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.name = spec.target
        if not self.name:
            raise UserError("model spec 'openai:' needs a model name, e.g. openai:kimi-k2")
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise UserError(
                f"{spec.api_key_env} is not set: export it, or pass --api-key-env VAR naming the "
                "variable that holds the key (any value, e.g. EMPTY, for servers without auth)")
        url = (spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.base_url, user, password = split_url_credentials(url)
        self.shown_url = redact_url_credentials(url)
        """The base URL as printed and recorded: any password replaced by [REDACTED]."""
        headers = {"Authorization": f"Bearer {key}"}
        if user is not None:
            if password == REDACTED:
                raise UserError(
                    f"the password of {self.shown_url} is not recorded in the run directory: "
                    "give the URL again (k2eval resume DIR --base-url URL, or --user-base-url / "
                    "--judge-base-url for those models)")
            pair = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        self._transport: _Transport = (
            _SdkTransport(self.base_url, key, headers, spec.request_timeout_s, self.shown_url)
            if spec.http_client == "sdk" else
            _AiohttpTransport(self.base_url, headers, spec.request_timeout_s, self.shown_url))

    def describe(self) -> dict[str, Any]:
        return {"scheme": "openai", "model": self.name, "base_url": self.shown_url,
                "api_key_env": self.spec.api_key_env,
                "reasoning": {"format": self.spec.reasoning_format,
                              "passback": self.spec.reasoning_passback,
                              "effort": self.spec.reasoning_effort,
                              "extra_body": self.spec.extra_body,
                              "max_tokens": MAX_TOKENS_NOTE}}

    async def preflight(self) -> None:
        status = await self._transport.probe(min(20.0, self.spec.request_timeout_s))
        if status in (401, 403):
            raise UserError(f"{self.shown_url} rejected the credentials (HTTP {status}): check "
                            f"the key in {self.spec.api_key_env} and any user:password in the "
                            "base URL")
        # other statuses: some servers do not implement /models; the first real call will tell

    async def complete(self, messages: list[Message], tools: list[ToolSchema] | None,
                       sampling: Sampling) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": outgoing_messages(messages, self.spec.reasoning_passback),
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature}
        if sampling.top_p is not None:
            kwargs["top_p"] = sampling.top_p
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if tools:
            kwargs["tools"] = tools
        if self.spec.reasoning_effort:
            kwargs["reasoning_effort"] = self.spec.reasoning_effort
        if self.spec.extra_body:
            kwargs.update(self.spec.extra_body)
        start = time.perf_counter()
        try:
            # The clients' own timeouts bound each read, not the whole call.
            async with asyncio.timeout(self.spec.request_timeout_s):
                resp = await self._transport.post(kwargs)
        except TimeoutError:
            raise RetryableModelError(
                f"request timed out after {self.spec.request_timeout_s:g} s "
                "(--request-timeout bounds the whole call)") from None
        return self._parse(resp, time.perf_counter() - start, self.spec.reasoning_format)

    @staticmethod
    def _parse(resp: Any, latency: float, reasoning_format: str = "auto") -> Completion:
        """A chat.completion JSON body into a `Completion`; anything else is malformed."""
        if not isinstance(resp, dict):
            raise RetryableModelError(f"malformed response: not a JSON object ({str(resp)[:80]!r})")
        if resp.get("error"):
            raise RetryableModelError(f"error in response body: {str(resp['error'])[:200]}")
        choices = resp.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise RetryableModelError("malformed response: no choices")
        choice = choices[0]
        msg = choice.get("message") or {}
        calls = []
        try:
            for i, tc in enumerate(msg.get("tool_calls") or ()):
                fn = tc.get("function") or {}
                args = fn.get("arguments")
                calls.append(ToolCall(id=str(tc.get("id") or f"call_{i}"),
                                      name=str(fn.get("name") or ""),
                                      arguments=args if isinstance(args, str) else json.dumps(args or {})))
            content, reasoning, source = split_reasoning(msg, reasoning_format)
            usage = Usage(calls=1)
            raw_usage = resp.get("usage") or {}
            usage.prompt_tokens = int(raw_usage.get("prompt_tokens") or 0)
            usage.completion_tokens = int(raw_usage.get("completion_tokens") or 0)
            details = raw_usage.get("completion_tokens_details") or {}
            usage.reasoning_tokens = int(details.get("reasoning_tokens") or 0)
        except (AttributeError, TypeError, ValueError) as exc:
            raise RetryableModelError(f"malformed response: {type(exc).__name__}: {exc}") from None
        return Completion(text=content, tool_calls=tuple(calls),
                          finish_reason=str(choice.get("finish_reason") or "stop"), usage=usage,
                          latency=latency, raw=None, reasoning=reasoning,
                          reasoning_source=source)

    async def aclose(self) -> None:
        await self._transport.aclose()
