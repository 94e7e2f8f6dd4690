"""The two transports of `openai:` models behave alike before the first call: the preflight
(GET /models) classifies unreachable endpoints, rejected credentials and servers without
/models the same way, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from k2eval.errors import EndpointUnreachable, FatalModelError, UserError
from k2eval.models.base import Sampling
from k2eval.models.openai_api import OpenAIChatModel
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import Reply

CLIENTS = ["aiohttp", "sdk"]


def preflight_then_call(base_url: str, client: str) -> Any:
    """The preflight's exception, else the exception or completion of one call."""

    async def go() -> Any:
        model = OpenAIChatModel(ModelSpec("openai:m", base_url=base_url, http_client=client,
                                          request_timeout_s=10))
        try:
            await model.preflight()
            return await model.complete([{"role": "user", "content": "hi"}], None,
                                        Sampling(max_tokens=8))
        except Exception as exc:
            return exc
        finally:
            await model.aclose()

    return asyncio.run(go())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_default_client_is_aiohttp() -> None:
    assert ModelSpec("openai:m").http_client == "aiohttp"


@pytest.mark.parametrize("client", CLIENTS)
def test_an_endpoint_that_accepts_the_credentials_passes_the_preflight(
        fake_openai: Any, client: str) -> None:
    srv = fake_openai(lambda body: Reply(text="hello"), auth=("ann", "pw"))
    result = preflight_then_call(srv.base_url.replace("http://", "http://ann:pw@"), client)
    assert getattr(result, "text", None) == "hello", result


@pytest.mark.parametrize("client", CLIENTS)
def test_rejected_credentials_fail_the_preflight_naming_the_status(
        fake_openai: Any, client: str) -> None:
    srv = fake_openai(lambda body: Reply(text="never"), auth=("ann", "pw"))
    result = preflight_then_call(srv.base_url.replace("http://", "http://ann:wrong@"), client)
    assert isinstance(result, UserError)
    assert "rejected the credentials (HTTP 401)" in str(result) and "wrong" not in str(result)
    assert srv.requests == []


@pytest.mark.parametrize("client", CLIENTS)
def test_an_unreachable_endpoint_fails_the_preflight_naming_the_url(
        client: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = preflight_then_call(url, client)
    assert isinstance(result, EndpointUnreachable)
    assert str(result).startswith(f"cannot reach {url} (") and "--base-url" in str(result)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_server_without_models_passes_the_preflight_and_the_call_tells(
        fake_openai: Any, client: str) -> None:
    srv = fake_openai(lambda body: Reply(text="never"))
    result = preflight_then_call(f"{srv.base_url}/nowhere", client)
    assert isinstance(result, FatalModelError) and result.status == 404, result
