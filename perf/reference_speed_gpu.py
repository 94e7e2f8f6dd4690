"""Reference MoE speed on a CUDA GPU: k2eval's model vs transformers' DeepseekV3ForCausalLM on
the same random checkpoint (bfloat16), side by side in one process.

Prints prefill tokens/s, greedy decode tokens/s at batch 1 and batch 8, and for batch-1 decode
the fraction of the memory-bandwidth bound: every decode step must read the active weights
(attention, dense/shared MLPs, the selected experts, lm_head) and the latent cache once, so
tokens/s <= bandwidth / bytes-per-step.

    python perf/reference_speed_gpu.py [--preset small] [--bandwidth-gbs 3350]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from reference_speed import make_checkpoint

from k2eval.models.reference.config import ReferenceConfig
from k2eval.models.reference.generation import GenerationRequest, Generator
from k2eval.models.reference.hf_compat import load_transformers_model
from k2eval.models.reference.loading import load_model
from k2eval.models.reference.tokenizer import load_tokenizer

PEAK_BANDWIDTH_GBS = {"H100": 3350.0, "H200": 4800.0, "A100": 2039.0}
"""HBM bandwidth of the SXM parts, used when --bandwidth-gbs is not given."""


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def decode_bytes_per_step(config: ReferenceConfig, context: int, element_size: int) -> int:
    """Bytes a batch-1 decode step must read: active parameters plus the latent cache."""
    h, heads = config.hidden_size, config.num_attention_heads
    q = (h * config.q_lora_rank + config.q_lora_rank * heads * config.qk_head_dim
         if config.q_lora_rank else h * heads * config.qk_head_dim)
    attention = (q + h * (config.kv_lora_rank + config.qk_rope_head_dim)
                 + config.kv_lora_rank * heads * (config.qk_nope_head_dim + config.v_head_dim)
                 + heads * config.v_head_dim * h)
    dense = 3 * h * config.intermediate_size
    moe = (3 * h * config.moe_intermediate_size * (config.num_experts_per_tok + config.n_shared_experts)
           + config.n_routed_experts * h)
    layers = config.num_hidden_layers
    dense_layers = config.first_k_dense_replace
    params = (layers * attention + dense_layers * dense + (layers - dense_layers) * moe
              + config.vocab_size * h + h)
    cache = layers * context * (config.kv_lora_rank + config.qk_rope_head_dim)
    return (params + cache) * element_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=("tiny", "small"))
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bandwidth-gbs", type=float, default=None)
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only to dry-run the script")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run perf/reference_speed.py for the CPU comparison")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    bandwidth = args.bandwidth_gbs or next(
        (v for k, v in PEAK_BANDWIDTH_GBS.items() if k in name), None)
    from transformers.utils import logging
    logging.set_verbosity_error()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint = make_checkpoint(args.preset, root)
        tokenizer = load_tokenizer(checkpoint)
        ours = load_model(checkpoint, torch.bfloat16).to(args.device)
        config = ours.config
        vocab = config.vocab_size
        theirs = load_transformers_model(checkpoint, root / "hf", torch.bfloat16).to(args.device)
        generator = Generator(ours, tokenizer, stop_token_ids=())
        prompts = torch.randint(0, vocab - 300, (8, args.prompt), generator=torch.Generator().manual_seed(0))
        gpu_prompts = prompts.to(args.device)

        def ours_generate(batch: int) -> None:
            generator.generate([GenerationRequest(tuple(p.tolist()), args.new) for p in prompts[:batch]])

        def theirs_generate(batch: int) -> None:
            theirs.generate(gpu_prompts[:batch], attention_mask=torch.ones_like(gpu_prompts[:batch]),
                            max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False,
                            eos_token_id=None, pad_token_id=0)

        rows = []
        with torch.inference_mode():
            ours_generate(1)  # warm-up
            theirs_generate(1)
            p_ours = timed(partial(ours, gpu_prompts[:1], last_only=True), args.repeats)
            p_theirs = timed(partial(theirs, gpu_prompts[:1], logits_to_keep=1), args.repeats)
            rows.append(("prefill b=1", args.prompt / p_ours, args.prompt / p_theirs))
            for batch in (1, 8):
                pre_ours = timed(partial(ours, gpu_prompts[:batch], last_only=True), args.repeats)
                pre_theirs = timed(partial(theirs, gpu_prompts[:batch], logits_to_keep=1), args.repeats)
                d_ours = timed(partial(ours_generate, batch), args.repeats) - pre_ours
                d_theirs = timed(partial(theirs_generate, batch), args.repeats) - pre_theirs
                rows.append((f"decode b={batch}", batch * args.new / d_ours, batch * args.new / d_theirs))

    params = sum(p.numel() for p in ours.parameters()) / 1e6
    print(f"{name}: {args.preset} ({params:.0f}M parameters, bfloat16), prompt {args.prompt}, "
          f"{args.new} new tokens")
    print(f"{'':14}{'k2eval tok/s':>14}{'transformers':>14}{'ratio':>8}")
    for label, a, b in rows:
        print(f"{label:14}{a:14.1f}{b:14.1f}{a / b:8.2f}x")
    step_bytes = decode_bytes_per_step(config, args.prompt + args.new // 2, 2)
    if bandwidth:
        bound = bandwidth * 1e9 / step_bytes
        print(f"batch-1 decode reads ~{step_bytes / 1e6:.1f} MB per token: bandwidth bound "
              f"{bound:.0f} tok/s at {bandwidth:.0f} GB/s; k2eval reaches {rows[1][1] / bound:.1%}, "
              f"transformers {rows[1][2] / bound:.1%}")
    else:
        print(f"batch-1 decode reads ~{step_bytes / 1e6:.1f} MB per token "
              "(pass --bandwidth-gbs for the fraction of the bound)")


if __name__ == "__main__":
    main()
