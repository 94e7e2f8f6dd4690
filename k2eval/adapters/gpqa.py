"""GPQA-Diamond: four-way multiple choice, avg@8, prompt and extraction as in simple-evals.

Each attempt shuffles the choices with its own seeded RNG (run seed, item, attempt) and
records the order, so a run is reproducible and a grade can be audited.
Data: hub `Idavidrein/gpqa` (gated, config gpqa_diamond), a CSV with the original columns,
or the official password-protected `dataset.zip`.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
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
from k2eval.adapters.data import load_hub_rows, read_csv_text
from k2eval.errors import DataError
from k2eval.spec import TaskSpec

ZIP_PASSWORD = b"deserted-untie-orchid"  # published in the GPQA README
ZIP_MEMBER = "dataset/gpqa_diamond.csv"
COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
           "Incorrect Answer 3")
LETTERS = "ABCD"

QUERY_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be "
    "of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. "
    "Think step by step before answering.\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)
ANSWER_PATTERN = re.compile(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?")


# --- data -----------------------------------------------------------------------------------

def _read_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            member = ZIP_MEMBER if ZIP_MEMBER in names else next(
                (n for n in names if n.endswith("gpqa_diamond.csv")), None)
            if member is None:
                raise DataError(f"{path}: no gpqa_diamond.csv inside (found {', '.join(names[:5])})")
            return zf.read(member, pwd=ZIP_PASSWORD).decode("utf-8")
    except RuntimeError as exc:
        if "password" in str(exc).lower():
            raise DataError(f"{path}: wrong password for the GPQA zip (expected the one published "
                            "in the GPQA README)") from None
        raise DataError(f"{path}: cannot read zip ({exc})") from None
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a zip file ({exc})") from None


def _item(row: dict[str, Any], where: str) -> Item:
    record_id = str(row.get("Record ID") or where)
    return Item(id=record_id,
                data={"question": str(row["Question"]).strip(),
                      "correct": str(row["Correct Answer"]).strip(),
                      "incorrect": [str(row[f"Incorrect Answer {i}"]).strip() for i in (1, 2, 3)]},
                meta={"domain": row.get("High-level domain") or ""})


def load_items(spec: TaskSpec, data: str | None) -> list[Item]:
    if data:
        path = Path(data)
        if not path.is_file():
            raise DataError(f"{path}: no such file (expected dataset.zip or a GPQA CSV)")
        text = _read_zip(path) if zipfile.is_zipfile(path) else path.read_text(encoding="utf-8")
        source = f"{path}:{ZIP_MEMBER}" if zipfile.is_zipfile(path) else str(path)
        return [_item(row, f"{source}:{lineno}")
                for lineno, row in read_csv_text(text, source, required=COLUMNS)]
    rows = load_hub_rows(spec.dataset, what=spec.name, token=os.environ.get("HF_TOKEN"))
    return [_item(row, f"hf row {i}") for i, row in enumerate(rows)]


# --- prompt ---------------------------------------------------------------------------------

def choice_order(ctx_rng: Any) -> list[int]:
    """A permutation of the four choices; index 0 is the correct answer."""
    order = [0, 1, 2, 3]
    ctx_rng.shuffle(order)
    return order


def build_prompt(item: Item, order: list[int]) -> str:
    choices = [item.data["correct"], *item.data["incorrect"]]
    shown = [choices[i] for i in order]
    return QUERY_TEMPLATE.format(question=item.data["question"],
                                 **{LETTERS[j]: shown[j] for j in range(4)})


# --- extraction -----------------------------------------------------------------------------

def extract_letter(text: str) -> str | None:
    """The first `Answer: X` in the response, as simple-evals does (`re.search`)."""
    m = ANSWER_PATTERN.search(text)
    return m.group(1).upper() if m else None


# --- the adapter ----------------------------------------------------------------------------

class GpqaAdapter(Adapter):
    name = "gpqa"
    summary_reads_details = False

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        return load_items(spec, data)

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        order = choice_order(ctx.rng)
        messages = [{"role": "user", "content": build_prompt(item, order)}]
        completion = await ctx.chat(messages)
        return SolveResult(messages=[*messages, completion.as_message()],
                           output={"choice_order": order,
                                   "correct_letter": LETTERS[order.index(0)],
                                   "finish_reason": completion.finish_reason})

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        order = attempt.output.get("choice_order")
        if not isinstance(order, list) or sorted(order) != [0, 1, 2, 3]:
            return Score(item.id, attempt.index, 0.0, "attempt has no valid choice order")
        gold = LETTERS[order.index(0)]
        letter = extract_letter(final_reply(attempt))
        if letter is None:
            return Score(item.id, attempt.index, 0.0, "no 'Answer: LETTER' line",
                         {"extracted": None, "gold": gold})
        ok = letter == gold
        return Score(item.id, attempt.index, float(ok),
                     "correct" if ok else f"wrong answer: {letter}, expected {gold}",
                     {"extracted": letter, "gold": gold})
