"""JSON schemas written as pydantic 2.10 (tau2-bench 0.1.3's locked version) writes them.

tau2 turns a tool's signature into `create_model("parameters", ...).model_json_schema()`.
Other pydantic versions write some types differently (2.11+ adds `"additionalProperties":
true` to a plain `dict`), so k2eval writes the schema itself, for the types tau2's tools use:
str/int/float/bool/Any, dict, lists, unions and Optional, literals, enums and models
(which go to `$defs`). Keys are sorted as pydantic sorts them: everywhere except inside
`properties` and `default`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIMITIVES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "bool": {"type": "boolean"}, "dict": {"type": "object"}, "None": {"type": "null"},
    "Any": {},
}


class UnsupportedType(ValueError):
    """A type these rules do not cover (a tau2 version other than 0.1.3)."""


@dataclass(frozen=True)
class Prim:
    name: str  # a key of PRIMITIVES


@dataclass(frozen=True)
class ListOf:
    item: Type | None


@dataclass(frozen=True)
class DictOf:
    value: Type


@dataclass(frozen=True)
class AnyOf:
    options: tuple[Type, ...]


@dataclass(frozen=True)
class Lit:
    values: tuple[str, ...]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Type
    required: bool
    default: Any = None  # JSON-ready; only when `has_default`
    has_default: bool = False
    description: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    doc: str | None = None
    forbid_extra: bool = False


@dataclass(frozen=True)
class EnumSpec:
    name: str
    members: tuple[tuple[str, str], ...]  # (member name, value)
    doc: str | None = None

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for _, value in self.members)


Type = Prim | ListOf | DictOf | AnyOf | Lit | ModelSpec | EnumSpec


@dataclass
class _Defs:
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)


def _type_schema(t: Type, defs: _Defs) -> dict[str, Any]:
    if isinstance(t, Prim):
        return dict(PRIMITIVES[t.name])
    if isinstance(t, ListOf):
        return {"items": {} if t.item is None else _type_schema(t.item, defs), "type": "array"}
    if isinstance(t, DictOf):
        return {"additionalProperties": _type_schema(t.value, defs), "type": "object"}
    if isinstance(t, AnyOf):
        return {"anyOf": [_type_schema(o, defs) for o in t.options]}
    if isinstance(t, Lit):
        kinds = {type(v) for v in t.values}
        if kinds not in ({str}, {int}):
            raise UnsupportedType(f"Literal{list(t.values)}")
        out: dict[str, Any] = {"type": "string" if kinds == {str} else "integer"}
        if len(t.values) == 1:
            return out | {"const": t.values[0]}
        return out | {"enum": list(t.values)}
    if isinstance(t, EnumSpec):
        if t.name not in defs.schemas:
            enum: dict[str, Any] = {"enum": list(t.values), "title": t.name, "type": "string"}
            if t.doc:
                enum["description"] = t.doc
            defs.schemas[t.name] = enum
        return {"$ref": f"#/$defs/{t.name}"}
    if t.name not in defs.schemas:
        defs.schemas[t.name] = {}  # placeholder against recursion
        defs.schemas[t.name] = _object_schema(t.name, t.fields, defs, doc=t.doc,
                                              forbid_extra=t.forbid_extra)
    return {"$ref": f"#/$defs/{t.name}"}


def _field_schema(spec: FieldSpec, defs: _Defs) -> dict[str, Any]:
    out = _type_schema(spec.type, defs)
    if not _is_reference(out):  # pydantic titles no field that is (optionally) a reference
        out["title"] = spec.name.replace("_", " ").title()
    if spec.has_default:
        out["default"] = spec.default
    if spec.description is not None:
        out["description"] = spec.description
    return out


def _is_reference(schema: dict[str, Any]) -> bool:
    if set(schema) == {"$ref"}:
        return True
    options = schema.get("anyOf") if set(schema) == {"anyOf"} else None
    return (options is not None and len(options) == 2 and options[1] == {"type": "null"}
            and set(options[0]) == {"$ref"})


def _object_schema(title: str, fields: tuple[FieldSpec, ...], defs: _Defs, *,
                   doc: str | None = None, forbid_extra: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": {f.name: _field_schema(f, defs) for f in fields},
                           "title": title, "type": "object"}
    required = [f.name for f in fields if f.required]
    if required:
        out["required"] = required
    if doc:
        out["description"] = doc
    if forbid_extra:
        out["additionalProperties"] = False
    return out


def parameters_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """The schema of tau2's `parameters` model over these fields."""
    defs = _Defs()
    out = _object_schema("parameters", fields, defs)
    if defs.schemas:
        out["$defs"] = defs.schemas
    return _sorted(out)


def _sorted(value: Any, parent: str | None = None) -> Any:
    if isinstance(value, dict):
        keys = list(value) if parent in ("properties", "default") else sorted(value)
        return {k: _sorted(value[k], k) for k in keys}
    if isinstance(value, list):
        return [_sorted(v, parent) for v in value]
    return value
