"""`k2eval` as an lm-eval model type: `lm_eval --model k2eval --model_args model=...`.

`model=reference:DIR` runs the reference MoE in process; `model=openai:NAME` (with
`base_url=URL`, `api_key_env=VAR`) talks to an OpenAI-compatible endpoint. Other arguments:
`batch_size` (contexts per forward pass / generations per batch), `add_bos_token` (prepend
BOS to every input; off by default, as in lm-eval's `hf` model), `max_gen_toks`, `dtype`,
`device`, `concurrency`, `max_tries`, `request_timeout`, `api` (`chat`, or `completions` to
send generation prompts raw to `/v1/completions`, for base models).

Importing this module registers the class in lm-eval's model registry; `k2eval.lmeval`
explains how the `lm_eval` command finds it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import lm_eval.models  # noqa: F401  (lm-eval's own models first: it fills an empty registry only)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from k2eval.lmeval.backends import DEFAULT_MAX_GEN_TOKS, Backend, backend_for
from k2eval.models import parse_model_spec, resolve_model

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

    from k2eval.models.base import ChatModel


def _batch_size(value: Any) -> int:
    """lm-eval passes `--batch_size` through (an int, or "auto"/"auto:N"): auto means 16."""
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 16


def _device(requested: str | None) -> str:
    """lm-eval's CLI asks for "cuda" by default; like its `hf` model, fall back to the CPU
    when no GPU is there."""
    import torch

    if not requested or (requested.startswith("cuda") and not torch.cuda.is_available()):
        return "cpu"
    return requested


@register_model("k2eval")
class K2EvalLM(LM):
    def __init__(self, model: str, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", batch_size: int | str = 16,
                 add_bos_token: bool = False, max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
                 dtype: str = "float32", device: str | None = None, concurrency: int = 32,
                 max_tries: int = 6, request_timeout: float = 600.0, api: str = "chat",
                 **_ignored: Any) -> None:
        super().__init__()
        spec = parse_model_spec(str(model), base_url=base_url, api_key_env=api_key_env,
                                request_timeout_s=float(request_timeout), max_tries=int(max_tries))
        self._loop = asyncio.new_event_loop()
        self._chat_model = self._make_chat_model(spec, dtype, _device(device), _batch_size(batch_size))
        self.backend: Backend = self._run(backend_for(
            self._chat_model, batch_size=_batch_size(batch_size), add_bos_token=bool(add_bos_token),
            max_gen_toks=int(max_gen_toks), concurrency=int(concurrency), api=str(api)))

    @staticmethod
    def _make_chat_model(spec: Any, dtype: str, device: str, batch_size: int) -> ChatModel:
        from k2eval.engine.retry import RetryingChatModel, RetryPolicy

        if spec.scheme == "reference":
            from k2eval.models.reference.chat_model import ReferenceChatModel

            return ReferenceChatModel(spec.target, dtype=dtype, device=device,
                                      max_batch_size=batch_size)
        return RetryingChatModel(resolve_model(spec), RetryPolicy(
            max_tries=spec.max_tries, max_retry_after=spec.max_retry_after_s))

    def _run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._run(self.backend.loglikelihood([tuple(r.args) for r in requests]))

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        return self._run(self.backend.loglikelihood_rolling([r.args[0] for r in requests]))

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return self._run(self.backend.generate([(r.args[0], dict(r.args[1])) for r in requests]))

    def get_model_info(self) -> dict[str, Any]:
        return {"k2eval_backend": self.backend.describe()}

    def close(self) -> None:
        self._run(self.backend.aclose())
        self._run(self._chat_model.aclose())
        self._loop.close()
