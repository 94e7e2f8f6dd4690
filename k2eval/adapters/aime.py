"""AIME 2024 / 2025: integer answers 0-999 in the last \\boxed{}, avg@64 in the K2 protocol.

Data: hub `HuggingFaceH4/aime_2024` (split train) and `opencompass/AIME2025` (configs
AIME2025-I and AIME2025-II), or a local JSONL with `problem` (or `question`) and `answer`.
"""

from __future__ import annotations

import re
from typing import Any

from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
    final_reply,
)
from k2eval.adapters.data import load_hub_rows, read_jsonl
from k2eval.errors import DataError
from k2eval.spec import TaskSpec

PROMPT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."


# --- data -----------------------------------------------------------------------------------

def _item(row: dict[str, Any], index: int, where: str) -> Item:
    problem = row.get("problem", row.get("question"))
    answer = row.get("answer")
    if not isinstance(problem, str) or not problem.strip() or answer is None or str(answer).strip() == "":
        raise DataError(f"{where}: needs non-empty `problem` (or `question`) and `answer`")
    item_id = str(row.get("id", row.get("ID", index)))
    return Item(id=item_id, data={"problem": problem, "answer": str(answer).strip()})


def load_items(spec: TaskSpec, data: str | None) -> list[Item]:
    if data:
        rows = read_jsonl(data)
        items = [_item(row, i, f"{data}:{lineno}") for i, (lineno, row) in enumerate(rows)]
    else:
        items = [_item(row, i, f"hf:{spec.dataset.hub} row {i}")
                 for i, row in enumerate(load_hub_rows(spec.dataset, what=spec.name))]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise DataError(f"{data or spec.dataset.hub}: duplicate item id {it.id!r}")
        seen.add(it.id)
    return items


# --- prompt ---------------------------------------------------------------------------------

def build_prompt(problem: str) -> str:
    return f"{problem}\n{PROMPT_SUFFIX}"


# --- extraction -----------------------------------------------------------------------------

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (balanced braces) or `\\boxed N`; None when absent."""
    starts = [m.end() for m in _BOX.finditer(text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            depth = 0
            for i in range(start, len(text)):
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1:i]
            continue  # unbalanced: look at an earlier box
        m = re.match(r"([^\s$]+)", text[start:])
        if m:
            return m.group(1)
    return None


_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|displaystyle)\s*\{([^{}]*)\}")


def normalize_integer(answer: str) -> int | None:
    """The answer as an integer after AIME normalisation, or None if it is not one."""
    s = answer.strip()
    prev = None
    while prev != s:
        prev = s
        s = _WRAPPERS.sub(r"\1", s).strip()
    s = s.strip("$ ").replace("\\!", "").replace("\\,", "").replace(" ", "")
    s = s.rstrip(".")
    s = re.sub(r"\^\{?\\circ\}?$", "", s)
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    if re.fullmatch(r"[+-]?\d+\.0*", s):
        return int(float(s))
    return None


def equivalent(pred: str, gold: str) -> bool:
    """Integer comparison when both are integers; math-verify for anything else."""
    p, g = normalize_integer(pred), normalize_integer(gold)
    if p is not None and g is not None:
        return p == g
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(f"${pred}$")))
    except Exception:
        return False


# --- the adapter ----------------------------------------------------------------------------

class AimeAdapter(Adapter):
    name = "aime"
    summary_reads_details = False

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        return load_items(spec, data)

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        messages = [{"role": "user", "content": build_prompt(item.data["problem"])}]
        completion = await ctx.chat(messages)
        return SolveResult(messages=[*messages, completion.as_message()],
                           output={"finish_reason": completion.finish_reason})

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        gold = item.data["answer"]
        text = final_reply(attempt)
        boxed = last_boxed(text)
        if boxed is None:
            reason = "no final answer"
            if attempt.output.get("finish_reason") == "length":
                reason += " (output cut at the token limit)"
            elif attempt.output.get("ended_by") == "limit":
                reason += f" ({attempt.output.get('limit')})"
            return Score(item.id, attempt.index, 0.0, reason, {"extracted": None, "gold": gold})
        ok = equivalent(boxed, gold)
        reason = "correct" if ok else f"wrong answer: {boxed.strip()!r}, expected {gold}"
        return Score(item.id, attempt.index, 1.0 if ok else 0.0, reason,
                     {"extracted": boxed, "gold": gold})

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        return {}
