"""The reference model's log-likelihoods (shared-prefix scoring over the latent cache) equal
transformers' DeepseekV3ForCausalLM on the same checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lm_eval.api.instance import Instance

from k2eval.lmeval.backends import cut_at_stop, generation_settings
from k2eval.lmeval.model import K2EvalLM
from k2eval.models.reference.hf_compat import load_transformers_model
from k2eval.models.reference.loading import load_model
from k2eval.models.reference.scoring import score_continuations, truncate

TOLERANCE = 1e-4


def transformers_loglikelihood(model: Any, context: tuple[int, ...], continuation: tuple[int, ...]) -> tuple[float, bool]:
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logprobs = model(ids).logits[0].float().log_softmax(-1)[len(context) - 1:-1]
    target = torch.tensor(continuation)
    return (float(logprobs.gather(-1, target[:, None]).sum()),
            bool((logprobs.argmax(-1) == target).all()))


@pytest.fixture(scope="module")
def theirs(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_transformers_model(tiny, tmp_path_factory.mktemp("hf-view"))


def random_requests(vocab: int, seed: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Contexts of mixed lengths, each with one to four continuations of one to five tokens."""
    gen = torch.Generator().manual_seed(seed)

    def draw(low: int, high: int) -> tuple[int, ...]:
        n = int(torch.randint(low, high, (), generator=gen))
        return tuple(torch.randint(0, vocab, (n,), generator=gen).tolist())

    return [(context, draw(1, 6)) for context in (draw(1, 40) for _ in range(6))
            for _ in range(int(torch.randint(1, 5, (), generator=gen)))]


@pytest.mark.parametrize("groups_per_batch", [1, 4])
def test_shared_prefix_scores_equal_transformers(tiny: Path, theirs: Any, groups_per_batch: int) -> None:
    ours = load_model(tiny)
    requests = random_requests(ours.config.vocab_size, seed=groups_per_batch)
    got = score_continuations(ours, requests, groups_per_batch=groups_per_batch)
    for (context, continuation), (logprob, greedy) in zip(requests, got, strict=True):
        expected, expected_greedy = transformers_loglikelihood(theirs, context, continuation)
        assert abs(logprob - expected) <= TOLERANCE
        assert greedy == expected_greedy


def test_a_greedy_continuation_is_flagged_greedy(tiny: Path) -> None:
    ours = load_model(tiny)
    context = (5, 17, 99)
    with torch.no_grad():
        best = int(ours(torch.tensor([context]))[0, -1].argmax())
    [(_, greedy)] = score_continuations(ours, [(context, (best,))])
    [(_, other)] = score_continuations(ours, [(context, ((best + 1) % ours.config.vocab_size,))])
    assert greedy and not other


@pytest.mark.parametrize(("context", "continuation", "window", "expected"), [
    ((1, 2, 3), (4,), 8, (1, 2, 3)),
    ((1, 2, 3, 4, 5, 6), (7, 8), 6, (2, 3, 4, 5, 6)),
])
def test_long_inputs_keep_their_newest_context_tokens(context: tuple[int, ...], continuation: tuple[int, ...],
                                                    window: int, expected: tuple[int, ...]) -> None:
    assert truncate(context, continuation, window) == expected


def test_a_continuation_longer_than_the_context_window_is_refused() -> None:
    with pytest.raises(ValueError, match="continuation has 5 tokens"):
        truncate((1,), (1, 2, 3, 4, 5), 4)


def test_lm_eval_requests_through_the_bridge_equal_transformers(tiny: Path, theirs: Any) -> None:
    """String requests as lm-eval sends them: tokenized by lm-eval's rule (trailing context
    space moves to the continuation; empty context = prefix token), then scored."""
    lm = K2EvalLM(model=f"reference:{tiny}", batch_size=2)
    backend: Any = lm.backend
    pairs = [("Question: Which animal barks?\nAnswer:", " dog"),
             ("Question: Which animal barks?\nAnswer:", " fish"),
             ("The capital of France is ", "Paris."),
             ("", "Hello world")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    got = lm.loglikelihood(requests)
    for (context, continuation), (logprob, greedy) in zip(pairs, got, strict=True):
        ids = backend.encode_pair(context, continuation)
        expected, expected_greedy = transformers_loglikelihood(theirs, *ids)
        assert abs(logprob - expected) <= TOLERANCE
        assert greedy == expected_greedy
    assert backend.encode_pair("The capital of France is ", "Paris.")[1][0] == \
        backend.tokenizer.encode(" Paris.")[0]

    text = "The quick brown fox jumps over the lazy dog. " * 3
    [rolling] = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    tokens = tuple(backend.tokenizer.encode(text))
    expected, _ = transformers_loglikelihood(theirs, (backend.prefix_token_id,), tokens)
    assert abs(rolling - expected) <= TOLERANCE
    lm.close()


@pytest.mark.parametrize(("gen_kwargs", "expected"), [
    ({"until": ["\n", ""], "max_gen_toks": 5}, (["\n"], 5, 0.0, None)),
    ({"until": "Q:"}, (["Q:"], 256, 0.0, None)),
    ({"do_sample": False, "temperature": 0.8}, ([], 256, 0.0, None)),
    ({"temperature": 0.7, "top_p": 0.9}, ([], 256, 0.7, 0.9)),
    ({"do_sample": True, "temperature": 1.0}, ([], 256, 1.0, None)),
])
def test_generation_settings_follow_lm_eval(gen_kwargs: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert generation_settings(gen_kwargs, 256) == expected


def test_generation_is_cut_at_the_first_stop_string() -> None:
    assert cut_at_stop(" 42\nQ: next", ["Q:", "\n"]) == " 42"
