"""Tool kits over typed databases: OpenAI schemas from signatures, validated calls, DB hashes.

A tool is a method marked with `@tool`. Its signature and docstring give k2eval's own
wording of the OpenAI function schema (used when no tau2-bench source tree supplies tau2's,
see `texts.py`). As in tau2, a call passes the model's arguments to the method as they are,
without validation or coercion, and a tool that raises returns ``"Error: <message>"``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from k2eval.models.base import ToolSchema

F = TypeVar("F", bound=Callable[..., Any])
_TOOL_ATTR = "__tau2_tool__"


def tool(*, mutates: bool) -> Callable[[F], F]:
    """Mark a method as a tool; `mutates` says whether it can change the database."""

    def mark(func: F) -> F:
        setattr(func, _TOOL_ATTR, mutates)
        return func

    return mark


class ToolError(Exception):
    """A tool call that cannot be made (unknown tool, invalid arguments)."""


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before `Args:`) and the per-argument descriptions."""
    doc = inspect.cleandoc(doc or "")
    head, _, rest = doc.partition("\nArgs:")
    params: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        if re.match(r"^\S", line):  # a new section (Returns:, ...) ends Args
            break
        m = re.match(r"^\s{2,}(\w+):\s*(.*)$", line)
        if m and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return " ".join(head.split()), params


@dataclass(frozen=True)
class ToolDef:
    name: str
    mutates: bool
    description: str
    params: type[BaseModel]

    def schema(self) -> ToolSchema:
        parameters = self.params.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("additionalProperties", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": parameters}}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _tool_def(name: str, func: Callable[..., Any], mutates: bool) -> ToolDef:
    description, arg_docs = _parse_docstring(func.__doc__ or "")
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(func).parameters.items():
        if pname == "self":
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints[pname], Field(default, description=arg_docs.get(pname)))
    params = create_model(f"{name}_params", __base__=_Params, **fields)
    return ToolDef(name=name, mutates=mutates, description=description, params=params)


DB = TypeVar("DB", bound=BaseModel)


class Toolkit(Generic[DB]):
    """Base class of the agent's and the user's tool kits of a domain, over its database."""

    _defs: ClassVar[dict[str, ToolDef]]

    def __init__(self, db: DB) -> None:
        self.db = db

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defs: dict[str, ToolDef] = {}
        for name in dir(cls):
            func = getattr(cls, name, None)
            if callable(func) and hasattr(func, _TOOL_ATTR):
                defs[name] = _tool_def(name, func, getattr(func, _TOOL_ATTR))
        cls._defs = defs

    @classmethod
    def tool_defs(cls) -> dict[str, ToolDef]:
        return cls._defs

    @classmethod
    def schemas(cls) -> list[ToolSchema]:
        return [d.schema() for d in sorted(cls._defs.values(), key=lambda d: d.name)]

    def has_tool(self, name: str) -> bool:
        return name in self._defs

    def use_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call the tool with the arguments as given, as tau2 does: a missing or unknown
        argument is Python's TypeError, a value of the wrong type goes in unchanged."""
        if name not in self._defs:
            raise ToolError(f"Tool '{name}' not found.")
        if not isinstance(arguments, dict):
            raise ToolError(f"Tool '{name}' expects a JSON object of arguments.")
        return getattr(self, name)(**arguments)

    def db_hash(self, *, canonical: bool = True) -> str:
        """tau2's hash of the database (sorted-key JSON). `canonical=False` hashes the
        serialization in field/insertion order: much faster, and equal only if the canonical
        hashes are equal too (the converse need not hold)."""
        if canonical:
            return dict_hash(self.db.model_dump(mode="json"))
        return hashlib.sha256(self.db.model_dump_json().encode()).hexdigest()


class AgentToolkit(Toolkit[DB]):
    """Base class of a domain's agent tools: every domain's agent can hand over to a human."""

    @tool(mutates=False)
    def transfer_to_human_agents(self, summary: str) -> str:
        """Hand the conversation to a human agent with a summary of the issue. Only when the
        user explicitly asks for a human, or the issue cannot be solved with the policy and tools.

        Args:
            summary: A summary of the user's issue.
        """
        return "Transfer successful"


def dict_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def to_json_str(result: Any) -> str:
    """A tool's result as the text the caller sees (pydantic models dumped as JSON)."""
    if isinstance(result, str):
        return result
    return json.dumps(_plain(result), default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()  # dates/datetimes then print as str() does, like tau2
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None:
        return None
    if isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)
