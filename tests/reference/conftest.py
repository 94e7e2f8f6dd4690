"""Checkpoints for the reference-model tests: random tiny ones, and hand-built ones whose
greedy output is a fixed script (so the whole chat path can be checked end to end)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from k2eval.models.reference.config import ReferenceConfig, small_preset
from k2eval.models.reference.loading import create_random_checkpoint, save_checkpoint
from k2eval.models.reference.modeling import DeepseekV3Model
from k2eval.models.reference.tokenizer import load_tokenizer, write_tiny_tokenizer

# Small ops run faster on one thread, and the test machine is shared.
torch.set_num_threads(1)

CheckpointFactory = Callable[..., Path]


def tiny_config(directory: Path, **changes: Any) -> ReferenceConfig:
    """Write the tiny tokenizer into `directory`; the tiny preset sized to it, with `changes`."""
    vocab = write_tiny_tokenizer(directory)
    tokenizer = load_tokenizer(directory)
    assert tokenizer.bos_id is not None
    return small_preset("tiny", vocab, tokenizer.bos_id, tokenizer.eos_id).replace(**changes)


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> CheckpointFactory:
    """make_checkpoint(seed=0, fp8=False, **config_changes) -> a random tiny checkpoint dir."""

    def make(seed: int = 0, fp8: bool = False, **changes: Any) -> Path:
        directory = tmp_path_factory.mktemp("tiny")
        create_random_checkpoint(tiny_config(directory, **changes), directory, seed=seed, fp8=fp8)
        return directory

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(make_checkpoint: CheckpointFactory) -> Path:
    return make_checkpoint(seed=0)


@pytest.fixture(scope="session")
def scripted_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """scripted_checkpoint(text) -> a checkpoint whose greedy continuation of any chat prompt
    is `text` followed by <|im_end|>; with `endless=True`, `text` repeated forever (a request
    then always runs to its token cap).

    Every attention output and MLP projection is zero, so the last hidden state is the
    current token's embedding; the script's tokens get orthogonal embeddings and lm_head
    maps each to its successor. Generation still runs the full model and cache."""

    def make(text: str, endless: bool = False) -> Path:
        directory = tmp_path_factory.mktemp("scripted")
        config = tiny_config(directory, rope_scaling=None)
        tokenizer = load_tokenizer(directory)
        im_middle, im_end = tokenizer.token_id("<|im_middle|>"), tokenizer.token_id("<|im_end|>")
        assert im_middle is not None and im_end is not None
        script = tokenizer.encode(text)
        chain = [im_middle, *script, script[0] if endless else im_end]
        successor: dict[int, int] = {}
        for current, following in itertools.pairwise(chain):
            if successor.setdefault(current, following) != following:
                raise ValueError(f"script {text!r} repeats token {current} with different successors")
        if len(successor) > config.hidden_size:
            raise ValueError("script too long for the tiny hidden size")
        model = DeepseekV3Model(config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.ones_like(p) if name.endswith("norm.weight") else torch.zeros_like(p))
            for axis, token in enumerate(successor):
                model.model.embed_tokens.weight[token, axis] = 1.0
                model.lm_head.weight[successor[token], axis] = 1.0
        save_checkpoint(model, directory)
        return directory

    return make
