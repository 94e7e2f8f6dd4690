"""The response cache key covers everything that determines a reply, and nothing secret."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from k2eval.models.base import Sampling
from k2eval.models.caching import endpoint_identity
from k2eval.spec import ModelSpec
from k2eval.store.cache import cache_key

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
TOOLS = [{"type": "function", "function": {"name": "add", "description": "Add.",
                                           "parameters": {"type": "object", "properties": {}}}}]
SAMPLING = Sampling(max_tokens=8192, temperature=0.6, top_p=0.95, seed=17, stop=())
SPEC = ModelSpec(spec="openai:kimi-k2", base_url="http://127.0.0.1:8000/v1")


def key(spec: ModelSpec = SPEC, messages: list[dict[str, Any]] = MESSAGES,
        tools: list[dict[str, Any]] | None = TOOLS, sampling: Sampling = SAMPLING) -> str:
    return cache_key(endpoint_identity(spec), messages, tools, dataclasses.asdict(sampling))


def test_the_same_request_has_the_same_key() -> None:
    assert key() == key(messages=[dict(m) for m in MESSAGES])


@pytest.mark.parametrize("spec", [
    dataclasses.replace(SPEC, base_url="http://127.0.0.2:8000/v1"),
    dataclasses.replace(SPEC, base_url="http://127.0.0.1:8001/v1"),
    dataclasses.replace(SPEC, base_url="http://127.0.0.1:8000/v2"),
    dataclasses.replace(SPEC, spec="openai:kimi-k2-0905"),
], ids=["host", "port", "path", "model-name"])
def test_another_endpoint_or_model_has_another_key(spec: ModelSpec) -> None:
    assert key(spec=spec) != key()


def test_messages_change_the_key() -> None:
    changed = [MESSAGES[0], {"role": "user", "content": "2+3?"}]
    assert key(messages=changed) != key()
    assert key(messages=[*MESSAGES, {"role": "assistant", "content": "4"}]) != key()


def test_tools_change_the_key() -> None:
    assert key(tools=None) != key()
    renamed = [{"type": "function", "function": {**TOOLS[0]["function"], "name": "plus"}}]
    assert key(tools=renamed) != key()


@pytest.mark.parametrize("change", [
    {"temperature": 0.0}, {"max_tokens": 16384}, {"top_p": None}, {"stop": ("</s>",)},
], ids=["temperature", "max_tokens", "top_p", "stop"])
def test_sampling_changes_the_key(change: dict[str, Any]) -> None:
    assert key(sampling=dataclasses.replace(SAMPLING, **change)) != key()


def test_each_attempt_of_avg_at_k_has_its_own_key() -> None:
    """The per-attempt seed is part of the key, so k samples are never served one reply."""
    keys = {key(sampling=dataclasses.replace(SAMPLING, seed=seed)) for seed in range(8)}
    assert len(keys) == 8


def test_credentials_and_the_api_key_are_not_part_of_the_identity(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_password = dataclasses.replace(SPEC, base_url="http://alice:s3cret@127.0.0.1:8000/v1/")
    assert key(spec=with_password) == key()
    assert "s3cret" not in str(endpoint_identity(with_password))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-one")
    first = key(spec=dataclasses.replace(SPEC, api_key_env="OPENAI_API_KEY"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-two")
    assert key(spec=dataclasses.replace(SPEC, api_key_env="OPENAI_API_KEY")) == first


def test_the_default_endpoint_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    unset = dataclasses.replace(SPEC, base_url=None)
    assert endpoint_identity(unset)["endpoint"] == "127.0.0.1:9999/v1"
