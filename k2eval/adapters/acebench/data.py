"""ACEBench (English) data: the 17 categories, their groups, and loading into Items.

The native layout is ACEBench's `data_all/data_en/`: `data_<category>.json` (JSON Lines despite
the extension) beside `possible_answer/data_<category>.json` holding each id's `ground_truth`
(and `mile_stone` for the agent categories).

Items. One row is one Item, except in the two multi-turn *normal* categories: there a dialogue
is split into rows `<category>_<dialogue>_<turn>` whose questions already contain the earlier
turns (with their gold calls), and ACEBench credits a dialogue only when every one of its
turns is correct (`multiplt_turn_accuracy` in the official `eval_main.py`). Such a dialogue is
one Item here (id `<category>_<dialogue>`) whose `turns` are solved one model call each and
scored together, so that an Item's score is exactly the official per-dialogue score and the
category accuracy is the official mean over dialogues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k2eval.adapters.base import Item
from k2eval.adapters.data import iter_jsonl
from k2eval.errors import DataError

NORMAL = (
    "normal_atom_bool", "normal_atom_enum", "normal_atom_number", "normal_atom_list",
    "normal_atom_object_deep", "normal_atom_object_short",
    "normal_single_turn_single_function", "normal_single_turn_parallel_function",
    "normal_multi_turn_user_switch", "normal_multi_turn_user_adjust",
    "normal_similar_api", "normal_preference",
)
SPECIAL = ("special_incomplete", "special_error_param", "special_irrelevant")
AGENT = ("agent_multi_turn", "agent_multi_step")
CATEGORIES = NORMAL + SPECIAL + AGENT
GROUPS = {"normal": NORMAL, "special": SPECIAL, "agent": AGENT}
MULTI_TURN_NORMAL = ("normal_multi_turn_user_switch", "normal_multi_turn_user_adjust")


def group_of(category: str) -> str:
    return category.split("_", 1)[0]


def select_categories(option: Any) -> tuple[str, ...]:
    """The `categories` option: "all", a group name, a category, or a comma-separated list."""
    names = option if isinstance(option, (list, tuple)) else str(option or "all").split(",")
    chosen: list[str] = []
    for raw in names:
        name = str(raw).strip()
        if name in ("all", ""):
            chosen.extend(CATEGORIES)
        elif name in GROUPS:
            chosen.extend(GROUPS[name])
        elif name in CATEGORIES:
            chosen.append(name)
        else:
            raise DataError(f"unknown ACEBench category {name!r}; use all, normal, special, agent "
                            f"or one of: {', '.join(CATEGORIES)}")
    return tuple(dict.fromkeys(chosen))


def find_data_dir(path: Path) -> Path:
    """Accept the repo root, `data_all`, `data_all/data_en`, or a folder laid out like it."""
    for candidate in (path, path / "data_en", path / "data_all" / "data_en"):
        if (candidate / "data_normal_atom_bool.json").is_file() or any(
                candidate.glob("data_*.json")):
            return candidate
    raise DataError(f"{path}: no ACEBench data_<category>.json files here (pass the data_en folder)")


def _answer_dir(data_dir: Path) -> Path:
    for candidate in (data_dir / "possible_answer", data_dir.parent / "possible_answer"):
        if candidate.is_dir():
            return candidate
    raise DataError(f"{data_dir}: no possible_answer/ folder beside the data files")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows: list[dict[str, Any]] = []
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "id" not in row:
            raise DataError(f"{path}:{lineno}: expected an object with an 'id'")
        row["_where"] = f"{path.name}:{lineno}"
        rows.append(row)
    return rows


def _require(row: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in row:
            raise DataError(f"{row['_where']}: missing field {key!r}")


def _functions(row: dict[str, Any]) -> list[dict[str, Any]]:
    funcs = row["function"]
    return funcs if isinstance(funcs, list) else [funcs]


def load_category(data_dir: Path, category: str) -> list[Item]:
    """The Items of one category, in file order, with their gold answers attached."""
    rows = read_jsonl(data_dir / f"data_{category}.json")
    answers = {a["id"]: a for a in read_jsonl(_answer_dir(data_dir) / f"data_{category}.json")}
    group = group_of(category)
    meta = {"category": category, "group": group}
    items: list[Item] = []
    dialogues: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        _require(row, "question", "function")
        answer = answers.get(row["id"])
        if answer is None or "ground_truth" not in answer:
            raise DataError(f"{row['_where']}: no ground_truth for id {row['id']!r} in "
                            f"possible_answer/data_{category}.json")
        base = {"id": row["id"], "category": category, "question": row["question"], "functions": _functions(row),
                "time": row.get("time") or "", "profile": row.get("profile") or "",
                "ground_truth": answer["ground_truth"]}
        if category in MULTI_TURN_NORMAL:
            dialogue = row["id"].rsplit("_", 1)[0]
            dialogues.setdefault(dialogue, []).append(base)
        elif group == "agent":
            _require(row, "initial_config", "involved_classes")
            if "mile_stone" not in answer:
                raise DataError(f"{row['_where']}: no mile_stone for {row['id']!r}")
            items.append(Item(row["id"], {**base, "initial_config": row["initial_config"],
                                          "involved_classes": row["involved_classes"],
                                          "mile_stone": answer["mile_stone"]}, dict(meta)))
        else:
            items.append(Item(row["id"], base, dict(meta)))
    for dialogue, turns in dialogues.items():
        turns.sort(key=lambda t: int(t["id"].rsplit("_", 1)[1]))
        items.append(Item(dialogue, {"category": category, "turns": turns},
                          {**meta, "turns": len(turns)}))
    return items


RELEASES = ("2025-07", "2025-02")
"""ACEBench data releases, newest first: February 2025 (first) and July 2025 (special categories'
gold answers rewritten: irrelevant requests answered with the prompt's own sentence, incorrect
values keyed by parameter instead of function name)."""


def data_release(items: list[Item]) -> str | None:
    """The release the loaded special categories' gold answers come from; None if they tell not
    (neither special_irrelevant nor special_error_param loaded)."""
    for item in items:
        category, gold = item.data["category"], item.data.get("ground_truth")
        if category == "special_irrelevant" and isinstance(gold, str):
            return "2025-07" if "the limitations of the function" in gold else "2025-02"
        if category == "special_error_param" and isinstance(gold, dict):
            functions = {fn.get("name") for fn in item.data["functions"]}
            return "2025-02" if functions & set(gold) else "2025-07"
    return None


def load_items(path: str | Path, categories: tuple[str, ...] = CATEGORIES) -> list[Item]:
    """Items of the chosen categories, interleaved (one of each category in turn) so that a
    run cut short with `--limit` still samples every category."""
    data_dir = find_data_dir(Path(path))
    per_category = [load_category(data_dir, category) for category in categories]
    longest = max((len(c) for c in per_category), default=0)
    return [c[i] for i in range(longest) for c in per_category if i < len(c)]
