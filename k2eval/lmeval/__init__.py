"""The bridge between k2eval and lm-evaluation-harness, both ways.

- `model.K2EvalLM`: k2eval's models as the lm-eval model type `k2eval`
  (`--model k2eval --model_args model=reference:DIR` or `model=openai:NAME,base_url=URL`).
- `adapter.LmEvalAdapter`: lm-eval's tasks and groups inside k2eval runs
  (`k2eval run --task lm-eval:<task-or-group>`), graded by lm-eval's own filters and metrics.
- `backends`: the three lm-eval request types answered by the reference MoE (log-likelihoods
  over its KV cache, one prefill per shared context) or an OpenAI-compatible endpoint.

How lm-eval finds the `k2eval` model type: importing `k2eval.lmeval.model` registers it in
lm-eval's model registry. lm-eval 0.4.x resolves `--model` only against models registered in
its own process and reads no plugin entry points, so its command line is run through
`python -m k2eval.lmeval ...` (the same arguments as `lm_eval`, with `k2eval` registered first);
from Python, `import k2eval.lmeval.model` before `lm_eval.simple_evaluate(model="k2eval", ...)`.
The package also declares the entry point `lm_eval.models: k2eval`, for lm-eval releases that
discover model plugins that way.
"""
