"""Instance images on a Ray cluster: an attempt names its image (for placement), a node
prepares a missing one by pulling it, and the driver leaves image checks to the nodes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.base import Item
from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.engine.config import build_run_config
from k2eval.errors import InfraError, UserError
from k2eval.spec import load_task

UNPULLABLE = "127.0.0.1:1/k2eval/absent:none"
"""A registry nothing listens on (loopback): the pull fails at once."""


@pytest.mark.docker
def test_an_instance_names_its_image_for_placement(synthetic_item: Item,
                                                   synthetic_image: str) -> None:
    spec = load_task("swebench-verified")
    assert SweBenchAdapter().item_image(synthetic_item, spec) == synthetic_image


@pytest.mark.docker
def test_preparing_an_image_that_cannot_be_pulled_is_an_infrastructure_error_naming_it(
        require_docker: Any) -> None:
    with pytest.raises(InfraError, match=re.escape(f"cannot prepare instance image {UNPULLABLE}: ")):
        asyncio.run(SweBenchAdapter().prepare_image(UNPULLABLE, load_task("swebench-verified")))


@pytest.mark.docker
def test_preparing_an_image_the_node_holds_pulls_nothing(synthetic_image: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from docker.models.images import ImageCollection

    pulled: list[str] = []
    pull = ImageCollection.pull

    def recording_pull(self: ImageCollection, repository: str, *args: Any, **kwargs: Any) -> Any:
        pulled.append(repository)
        return pull(self, repository, *args, **kwargs)

    monkeypatch.setattr(ImageCollection, "pull", recording_pull)
    spec = load_task("swebench-verified")
    asyncio.run(SweBenchAdapter().prepare_image(synthetic_image, spec))
    assert pulled == []
    with pytest.raises(InfraError):  # an absent image does go through the recorded pull
        asyncio.run(SweBenchAdapter().prepare_image(UNPULLABLE, spec))
    assert pulled == [UNPULLABLE.rpartition(":")[0]]


@pytest.mark.docker
def test_setup_checks_images_here_unless_the_nodes_prepare_them(
        synthetic_row: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "absent.jsonl"
    data.write_text(json.dumps({**synthetic_row, "image": UNPULLABLE}) + "\n")
    config = build_run_config("swebench-verified", "openai:m", data=str(data))
    adapter = SweBenchAdapter()
    with pytest.raises(UserError, match=re.escape(f"not present locally (first: {UNPULLABLE})")):
        asyncio.run(adapter.setup(config))
    adapter.images_on_nodes = True  # what the Ray executor sets
    asyncio.run(adapter.setup(config))
