"""Chat models: the contract, the OpenAI-compatible backend and the local reference MoE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k2eval.errors import UserError
from k2eval.models.base import ChatModel, Completion, Message, Sampling, ToolCall, Usage

if TYPE_CHECKING:
    from k2eval.spec import ModelSpec

SCHEMES = ("openai", "reference")

__all__ = ["SCHEMES", "ChatModel", "Completion", "Message", "Sampling", "ToolCall", "Usage",
           "parse_model_spec", "resolve_model"]


def parse_model_spec(spec: str, **kwargs: object) -> ModelSpec:
    """Validate `scheme:target` and build a `ModelSpec`."""
    scheme, sep, target = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        raise UserError(f"unknown model {spec!r}: use one of "
                        + ", ".join(f"{s}:<{'model-name' if s == 'openai' else 'checkpoint-dir'}>"
                                    for s in SCHEMES))
    if not target:
        raise UserError(f"model {spec!r} names no target after '{scheme}:'")
    from k2eval.spec import ModelSpec

    return ModelSpec(spec=spec, **{k: v for k, v in kwargs.items() if v is not None})  # type: ignore[arg-type]


def resolve_model(spec: ModelSpec) -> ChatModel:
    """Construct the backend for a model spec (no network traffic; see `preflight`)."""
    if spec.scheme == "openai":
        from k2eval.models.openai_api import OpenAIChatModel

        return OpenAIChatModel(spec)
    if spec.scheme == "reference":
        if spec.reasoning_effort or spec.extra_body:
            raise UserError("--reasoning-effort and --extra-body are request options of openai: "
                            "endpoints; the reference model takes none")
        try:
            from k2eval.models.reference.chat_model import ReferenceChatModel
        except ImportError as exc:
            raise UserError(f"the reference model needs PyTorch: pip install 'k2eval[reference]' ({exc})") from None
        return ReferenceChatModel(spec.target)
    raise UserError(f"unknown model scheme {spec.scheme!r}; use one of {', '.join(SCHEMES)}")
