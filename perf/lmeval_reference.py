"""lm-eval log-likelihood throughput: the `k2eval` model type on the reference MoE vs lm-eval's
own `hf` model (transformers' DeepseekV3ForCausalLM) on the same checkpoint, same requests.

The requests are shaped like a few-shot multiple-choice task: each document's context (a few
hundred tokens of few-shot examples and the question) is shared by its four choices of one to
four tokens. k2eval's bridge runs each distinct context once over its latent KV cache and
only the choices again; `hf` runs every (context + choice) row in full, batched and sorted by
length as lm-eval does. Both get the same token ids (the bridge also tokenizes the strings,
`hf` is handed the tokens: its time excludes tokenization). Both return the same numbers,
which the script checks before timing. Prints requests per CPU-second of each (best of
`--repeats`, timed alternately; process CPU time, so other load on a shared machine does not
skew it) and the ratio.

    python perf/lmeval_reference.py [--preset small] [--docs 32] [--batch 16] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.instance import Instance
from reference_speed import best_of_pair, make_checkpoint

from k2eval.lmeval.model import K2EvalLM
from k2eval.models.reference.hf_compat import load_transformers_model

WORDS = ("the", "cell", "energy", "river", "number", "answer", "light", "planet", "system", "market",
         "water", "value", "force", "history", "city", "animal", "method", "result", "question")


def documents(n: int, context_words: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(context_words // 2, context_words))]
        choices = [" " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) for _ in range(4)]
        out.append(("Question: " + " ".join(words) + "?\nAnswer:", choices))
    return out


def hf_lm(theirs: Any, batch: int) -> Any:
    """lm-eval's `hf` model around the transformers model; tokens are handed to it directly,
    so its tokenizer (a placeholder word-level one) only supplies padding."""
    from lm_eval.models.huggingface import HFLM
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    placeholder = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<pad>": 0}, unk_token="<pad>")),
                                          pad_token="<pad>", eos_token="<pad>")
    return HFLM(pretrained=theirs, tokenizer=placeholder, batch_size=batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=("tiny", "small"))
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--context-words", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_checkpoint(args.preset, Path(tmp))
        ours = K2EvalLM(model=f"reference:{checkpoint}", batch_size=args.batch)
        theirs = hf_lm(load_transformers_model(checkpoint, Path(tmp) / "hf"), args.batch)
        backend: Any = ours.backend
        pairs = [(context, choice) for context, choices in documents(args.docs, args.context_words)
                 for choice in choices]
        instances = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
        tokens = [(pair, *map(list, backend.encode_pair(*pair))) for pair in pairs]
        lengths = [len(c) + len(x) for _, c, x in tokens]

        got_ours = ours.loglikelihood(instances)
        got_theirs = theirs._loglikelihood_tokens(tokens, disable_tqdm=True)
        worst = max(abs(a[0] - b[0]) for a, b in zip(got_ours, got_theirs, strict=True))
        assert worst < 1e-3 and [a[1] for a in got_ours] == [b[1] for b in got_theirs], worst

        best = best_of_pair(args.repeats, lambda: ours.loglikelihood(instances),
                            lambda: theirs._loglikelihood_tokens(tokens, disable_tqdm=True))
        ours.close()

    n = len(pairs)
    print(f"preset {args.preset}, {args.docs} documents x 4 choices = {n} loglikelihood requests, "
          f"{min(lengths)}-{max(lengths)} tokens each, batch {args.batch}, {args.threads} thread(s); "
          f"max |difference| {worst:.2e}")
    print(f"k2eval bridge (reference, shared-context cache): {n / best[0]:8.1f} requests per CPU-second")
    print(f"lm-eval hf (transformers):                       {n / best[1]:8.1f} requests per CPU-second")
    print(f"ratio: {best[1] / best[0]:.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
