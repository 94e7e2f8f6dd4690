"""`python -m k2eval.lmeval ARGS`: lm-eval's own command line with the `k2eval` model type
registered (for lm-eval releases that do not discover model plugins themselves)."""

from __future__ import annotations


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    import k2eval.lmeval.model  # noqa: F401  (registers --model k2eval)

    cli_evaluate()


if __name__ == "__main__":
    main()
