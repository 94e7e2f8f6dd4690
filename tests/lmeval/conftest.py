"""Fixtures for the lm-eval bridge: the toy lm-eval tasks (local JSON data) and tiny
reference checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from k2eval.models.reference.config import small_preset
from k2eval.models.reference.loading import create_random_checkpoint
from k2eval.models.reference.tokenizer import load_tokenizer, write_tiny_tokenizer

torch.set_num_threads(1)

TASKS = Path(__file__).parent / "tasks"


@pytest.fixture(scope="session")
def toy_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy task folder, its YAMLs pointing at their data files by absolute path."""
    out = tmp_path_factory.mktemp("lmeval-tasks")
    for src in TASKS.iterdir():
        (out / src.name).write_text(src.read_text().replace("DATA_DIR", str(out)))
    return out


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """make_checkpoint(seed) -> a random tiny checkpoint (tokenizer included)."""
    made: dict[int, Path] = {}

    def make(seed: int = 0) -> Path:
        if seed not in made:
            directory = tmp_path_factory.mktemp(f"tiny-{seed}")
            vocab = write_tiny_tokenizer(directory)
            tokenizer = load_tokenizer(directory)
            assert tokenizer.bos_id is not None
            config = small_preset("tiny", vocab, tokenizer.bos_id, tokenizer.eos_id)
            create_random_checkpoint(config, directory, seed=seed)
            made[seed] = directory
        return made[seed]

    return make


@pytest.fixture(scope="session")
def tiny(make_checkpoint: Callable[[int], Path]) -> Path:
    return make_checkpoint(0)
