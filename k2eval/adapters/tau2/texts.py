"""tau2-bench's own texts, read from a tau2-bench source tree without importing it.

The model sees tau2's exact wording only where tau2's sources say it: the agent's
instruction and system prompt layout (`agent/llm_agent.py`), the user simulator's prompt
layout (`user/user_simulator.py`) and every tool's description, parameter descriptions,
types, defaults and required list (`domains/*/tools.py`, `domains/telecom/user_tools.py`,
and the data models their signatures name). The files are parsed with `ast`; the tool
schemas are built as tau2's `Tool` builds them: `docstring_parser` over the docstring
(description = short + blank line + long description), one `parameters` model over the
signature, written as pydantic 2.10 writes it (see `schema.py`), tools in definition order.

Where the tree is: `--option tau2_source=PATH` (a tau2-bench checkout or its `src/tau2`),
else `$TAU2_SOURCE_DIR`, else `<repo>/src/tau2` when the data directory is a checkout's
`<repo>/data/tau2`. Without a tree the texts are k2eval's own wording (the run is marked so);
a data model whose file the tree lacks is described by k2eval's own model (marked too).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from k2eval.adapters.tau2.schema import (
    AnyOf,
    DictOf,
    EnumSpec,
    FieldSpec,
    ListOf,
    Lit,
    ModelSpec,
    Prim,
    Type,
    UnsupportedType,
    parameters_schema,
)
from k2eval.errors import UserError
from k2eval.models.base import ToolSchema

SOURCE_ENV = "TAU2_SOURCE_DIR"
AGENT_FILE = "agent/llm_agent.py"
USER_FILE = "user/user_simulator.py"
TOOLKIT_FILES = {  # k2eval's toolkit class -> tau2's file defining the class of that name
    "AirlineTools": "domains/airline/tools.py",
    "RetailTools": "domains/retail/tools.py",
    "TelecomTools": "domains/telecom/tools.py",
    "TelecomUserTools": "domains/telecom/user_tools.py",
}
NEEDED = (AGENT_FILE, USER_FILE, *TOOLKIT_FILES.values())

OWN_AGENT_INSTRUCTION = """You are a customer service agent. Help the user, following the <policy>
given below at all times. Each turn, do exactly one of two things: write a message to the
user, or make a tool call; never both. Be helpful, and make tool call arguments valid JSON."""
# The layouts are tau2's structure (tags around the parts), not wording.
OWN_AGENT_LAYOUT = ("<instructions>\n{agent_instruction}\n</instructions>\n"
                    "<policy>\n{domain_policy}\n</policy>")
OWN_USER_LAYOUT = "{global_user_sim_guidelines}\n\n<scenario>\n{instructions}\n</scenario>"


class SourceError(UserError):
    """A tau2-bench source tree that cannot be used."""


@dataclass(frozen=True)
class Texts:
    """Everything worded that the agent and the user simulator are sent, besides the data."""

    agent_instruction: str
    agent_layout: str
    user_layout: str
    tools: Mapping[str, list[ToolSchema]]  # by toolkit class name
    source: Path | None = None
    own_models: tuple[str, ...] = ()  # data models described in k2eval's wording
    fingerprint: str = ""

    @property
    def official(self) -> bool:
        return self.source is not None and not self.own_models

    def agent_system_prompt(self, policy: str, instruction: str | None = None) -> str:
        return self.agent_layout.format(agent_instruction=instruction or self.agent_instruction,
                                        domain_policy=policy)

    def user_system_prompt(self, guidelines: str, scenario: str) -> str:
        return self.user_layout.format(global_user_sim_guidelines=guidelines,
                                       instructions=scenario)

    def conditions(self) -> dict[str, Any]:
        if self.source is None:
            return {"tool_texts": "k2eval wording", "official_texts": False}
        label = f"tau2-bench source {self.source}"
        if self.own_models:
            label += f" (k2eval wording for data models {', '.join(self.own_models)})"
        return {"tool_texts": label, "official_texts": self.official,
                "texts_sha256": self.fingerprint}


# --- locating the tree -----------------------------------------------------------------

def _package_dir(path: Path) -> Path | None:
    for candidate in (path / "src" / "tau2", path / "tau2", path):
        if (candidate / AGENT_FILE).is_file():
            return candidate
    return None


def locate_source(option: str | None, data_dir: Path | None) -> Path | None:
    """tau2's package directory (`.../src/tau2`), or None when there is none to be found."""
    explicit = option or os.environ.get(SOURCE_ENV)
    if explicit:
        root = Path(explicit).expanduser()
        package = _package_dir(root)
        if package is None:
            how = "--option tau2_source" if option else f"${SOURCE_ENV}"
            raise SourceError(f"{how}={explicit}: no tau2-bench source tree there (expected "
                              f"src/tau2/{AGENT_FILE}); point it at a tau2-bench checkout")
        return package.resolve()
    if data_dir is not None:  # a checkout: <repo>/data/tau2 beside <repo>/src/tau2
        data_dir = data_dir.absolute()
        if data_dir.name == "tau2" and data_dir.parent.name == "data":
            package = _package_dir(data_dir.parent.parent / "src" / "tau2")
            return package.resolve() if package else None
    return None


# --- reading the texts -------------------------------------------------------------------

def load_texts(option: str | None, data_dir: Path | None) -> Texts:
    """The texts a run sends: tau2's from the located tree, else k2eval's own wording."""
    package = locate_source(option, data_dir)
    return _own_texts() if package is None else _checked_texts(package)


@cache
def _own_texts() -> Texts:
    return own_texts({name: kit.schemas for name, kit in _toolkits().items()})


@cache
def _checked_texts(package: Path) -> Texts:
    texts = official_texts(package, _fallbacks())
    for name, kit in _toolkits().items():
        theirs = {s["function"]["name"] for s in texts.tools[name]}
        if theirs != set(kit.tool_defs()):
            raise SourceError(f"tau2-bench source tree {package}: {name} differs from k2eval's "
                              f"in tools {sorted(theirs ^ set(kit.tool_defs()))}; "
                              "use tau2-bench 0.1.3")
    return texts


def _toolkits() -> dict[str, Any]:
    from k2eval.adapters.tau2.airline import AirlineTools
    from k2eval.adapters.tau2.retail import RetailTools
    from k2eval.adapters.tau2.telecom import TelecomTools, TelecomUserTools

    return {"AirlineTools": AirlineTools, "RetailTools": RetailTools,
            "TelecomTools": TelecomTools, "TelecomUserTools": TelecomUserTools}


def _fallbacks() -> tuple[tuple[str, Any], ...]:
    """k2eval's counterparts of the tau2 data-model types that tool signatures name."""
    from k2eval.adapters.tau2 import airline, telecom

    return (("FlightType", airline.FlightType), ("CabinClass", airline.CabinClass),
            ("Insurance", airline.Insurance), ("FlightInfo", airline.FlightInfo),
            ("Passenger", airline.Passenger), ("Payment", airline.Payment),
            ("NetworkModePreference", telecom.ModePreference),
            ("APNSettings", telecom.APNSettings))


def own_texts(toolkits: Mapping[str, Callable[[], list[ToolSchema]]]) -> Texts:
    return Texts(OWN_AGENT_INSTRUCTION, OWN_AGENT_LAYOUT, OWN_USER_LAYOUT,
                 {name: schemas() for name, schemas in toolkits.items()})


@cache
def official_texts(package: Path, fallbacks: tuple[tuple[str, type], ...] = ()) -> Texts:
    """tau2's texts from its package directory. `fallbacks` are k2eval's models (and enums)
    by name, used for a data model whose defining file the tree lacks."""
    missing = [name for name in NEEDED if not (package / name).is_file()]
    if missing:
        raise SourceError(f"tau2-bench source tree {package} lacks {', '.join(missing)}")
    reader = _Reader(package, dict(fallbacks))
    agent = reader.module(package / AGENT_FILE)
    user = reader.module(package / USER_FILE)
    tools = {cls: reader.toolkit(package / path, cls) for cls, path in TOOLKIT_FILES.items()}
    digest = hashlib.sha256()
    for path in sorted(reader.read):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return Texts(agent_instruction=agent.string("AGENT_INSTRUCTION"),
                 agent_layout=agent.string("SYSTEM_PROMPT"),
                 user_layout=user.string("SYSTEM_PROMPT"),
                 tools=tools, source=package, own_models=tuple(sorted(reader.own_models)),
                 fingerprint=digest.hexdigest()[:16])


TYPING_NAMES: dict[str, Type] = {"Any": Prim("Any"), "str": Prim("str"), "int": Prim("int"),
                "float": Prim("float"), "bool": Prim("bool"), "dict": Prim("dict"),
                "Dict": Prim("dict"), "None": Prim("None"), "list": ListOf(None),
                "List": ListOf(None)}


@dataclass
class _Module:
    path: Path
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted module
    aliases: dict[str, ast.expr] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)

    def string(self, name: str) -> str:
        """A module-level string constant, `.strip()`-ed where the source strips it."""
        node = self.aliases.get(name)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "strip" and not node.args):
            node, strip = node.func.value, True
        else:
            strip = False
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            raise SourceError(f"{self.path}: {name} is not a string constant")
        return node.value.strip() if strip else node.value


class _Reader:
    def __init__(self, package: Path, fallbacks: dict[str, type]) -> None:
        self.package = package
        self.fallbacks = fallbacks
        self.modules: dict[Path, _Module | None] = {}
        self.read: set[Path] = set()
        self.own_models: set[str] = set()
        self.resolved: dict[tuple[Path, str], Type] = {}

    def module(self, path: Path) -> _Module:
        found = self._module(path)
        if found is None:
            raise SourceError(f"tau2-bench source tree lacks {path}")
        return found

    def _module(self, path: Path) -> _Module | None:
        if path not in self.modules:
            if not path.is_file():
                self.modules[path] = None
                return None
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            self.read.add(path)
            mod = _Module(path, tree)
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        mod.imports[alias.asname or alias.name] = node.module
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    mod.aliases[node.targets[0].id] = node.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and node.value is not None:
                    mod.aliases[node.target.id] = node.value
                elif isinstance(node, ast.ClassDef):
                    mod.classes[node.name] = node
            self.modules[path] = mod
        return self.modules[path]

    # Tools -----------------------------------------------------------------------------

    def toolkit(self, path: Path, class_name: str) -> list[ToolSchema]:
        mod = self.module(path)
        cls = mod.classes.get(class_name)
        if cls is None:
            raise SourceError(f"{path}: no class {class_name}")
        return [self._tool(mod, fn) for fn in cls.body
                if isinstance(fn, ast.FunctionDef) and any(_is_tool_decorator(d)
                                                           for d in fn.decorator_list)]

    def _tool(self, mod: _Module, fn: ast.FunctionDef) -> ToolSchema:
        from docstring_parser import parse

        doc = parse(ast.get_docstring(fn, clean=False) or "")
        short, long = doc.short_description or "", doc.long_description or ""
        description = (short + "\n\n" + long if long else short) if short else fn.name
        arg_docs = {p.arg_name: p.description for p in doc.params}
        args = fn.args.args[1:]  # without self
        defaults: list[ast.expr | None] = [None] * (len(args) - len(fn.args.defaults))
        defaults += list(fn.args.defaults)
        fields = []
        for arg, default in zip(args, defaults, strict=True):
            try:
                t = Prim("Any") if arg.annotation is None else self.type(mod, arg.annotation)
            except UnsupportedType as exc:
                raise SourceError(f"{mod.path}: {fn.name}({arg.arg}): unsupported type "
                                  f"{exc}; is this tau2-bench 0.1.3?") from None
            fields.append(FieldSpec(arg.arg, t, required=default is None,
                                    default=None if default is None else self.value(mod, default),
                                    has_default=default is not None,
                                    description=arg_docs.get(arg.arg)))
        return {"type": "function",
                "function": {"name": fn.name, "description": description,
                             "parameters": parameters_schema(tuple(fields))}}

    # Types -----------------------------------------------------------------------------

    def type(self, mod: _Module, node: ast.expr) -> Type:
        if isinstance(node, ast.Constant) and node.value is None:
            return Prim("None")
        if isinstance(node, ast.Name):
            return self.named(mod, node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union(self.type(mod, node.left), self.type(mod, node.right))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            head = node.value.id
            args = (list(node.slice.elts) if isinstance(node.slice, ast.Tuple)
                    else [node.slice])
            if head in ("List", "list"):
                return ListOf(self.type(mod, args[0]))
            if head in ("Dict", "dict"):
                return DictOf(self.type(mod, args[1]))
            if head == "Optional":
                return _union(self.type(mod, args[0]), Prim("None"))
            if head == "Union":
                return _union(*(self.type(mod, a) for a in args))
            if head == "Literal":
                return Lit(tuple(self.value(mod, a) for a in args))
            if head == "Annotated":
                return self.type(mod, args[0])
        raise UnsupportedType(ast.unparse(node))

    def named(self, mod: _Module, name: str) -> Type:
        key = (mod.path, name)
        if key not in self.resolved:
            self.resolved[key] = self._named(mod, name)
        return self.resolved[key]

    def _named(self, mod: _Module, name: str) -> Type:
        if name in mod.classes:
            return self.class_type(mod, mod.classes[name])
        if name in mod.aliases:
            return self.type(mod, mod.aliases[name])
        if name in mod.imports and mod.imports[name].startswith("tau2."):
            parts = mod.imports[name].split(".")[1:]
            other = self._module(self.package.joinpath(*parts).with_suffix(".py"))
            if other is None:
                return self.fallback(name)
            return self.named(other, name)
        if name in TYPING_NAMES:
            return TYPING_NAMES[name]
        raise UnsupportedType(name)

    def class_type(self, mod: _Module, cls: ast.ClassDef) -> Type:
        bases = [ast.unparse(b) for b in cls.bases]
        doc = ast.get_docstring(cls)
        if "Enum" in bases or "StrEnum" in bases:
            members = [(n.targets[0].id, self.value(mod, n.value)) for n in cls.body
                       if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                       and not n.targets[0].id.startswith("_")]
            return EnumSpec(cls.name, tuple(members), doc)
        fields: dict[str, FieldSpec] = {}
        forbid = "BaseModelNoExtra" in bases
        for base in bases:
            parent = self.named(mod, base) if base in mod.classes else None
            if isinstance(parent, ModelSpec):
                fields.update((f.name, f) for f in parent.fields)
                forbid = forbid or parent.forbid_extra
            elif base not in ("BaseModel", "BaseModelNoExtra"):
                raise UnsupportedType(f"class {cls.name}({base})")
        for node in cls.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "model_config" for t in node.targets):
                forbid = forbid or "forbid" in ast.unparse(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and not node.target.id.startswith("_"):
                fields[node.target.id] = self.field(mod, node)
        return ModelSpec(cls.name, tuple(fields.values()), doc, forbid)

    def field(self, mod: _Module, node: ast.AnnAssign) -> FieldSpec:
        assert isinstance(node.target, ast.Name)
        name, t = node.target.id, self.type(mod, node.annotation)
        value, description, factory = node.value, None, False
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
                and value.func.id == "Field":
            keywords = {k.arg: k.value for k in value.keywords}
            default = value.args[0] if value.args else keywords.get("default")
            factory = "default_factory" in keywords
            if "description" in keywords:
                description = self.value(mod, keywords["description"])
            value = default
        if value is None or (isinstance(value, ast.Constant) and value.value is Ellipsis):
            return FieldSpec(name, t, required=not factory, description=description)
        return FieldSpec(name, t, required=False, default=self.value(mod, value),
                         has_default=True, description=description)

    def value(self, mod: _Module, node: ast.expr) -> Any:
        """A literal (or an enum member: its value), as JSON."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            enum = self.named(mod, node.value.id)
            if isinstance(enum, EnumSpec) and node.attr in dict(enum.members):
                return dict(enum.members)[node.attr]
        try:
            return ast.literal_eval(node)
        except ValueError:
            raise UnsupportedType(ast.unparse(node)) from None

    def fallback(self, name: str) -> Type:
        """k2eval's own definition of a data model the tree does not hold."""
        obj = self.fallbacks.get(name)
        if obj is None:
            raise UnsupportedType(f"{name} (its defining file is not in the tree)")
        self.own_models.add(name)
        return python_type(obj)


def python_type(obj: Any) -> Type:
    """k2eval's own type (pydantic model, enum, typing construct) in schema terms."""
    origin, args = typing.get_origin(obj), typing.get_args(obj)
    if origin is typing.Annotated:
        return python_type(args[0])
    if origin is typing.Literal:
        return Lit(args)
    if origin in (typing.Union, types.UnionType):
        return _union(*(python_type(a) for a in args))
    if origin is list:
        return ListOf(python_type(args[0]) if args else None)
    if origin is dict:
        return DictOf(python_type(args[1]))
    if obj is type(None):
        return Prim("None")
    if isinstance(obj, type) and issubclass(obj, Enum):
        return EnumSpec(obj.__name__, tuple((m.name, m.value) for m in obj), _own_doc(obj, Enum))
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        fields = tuple(
            FieldSpec(name, python_type(info.annotation), required=info.is_required(),
                      default=_json_default(info.default), description=info.description,
                      has_default=not info.is_required() and info.default_factory is None)
            for name, info in obj.model_fields.items())
        return ModelSpec(obj.__name__, fields, _own_doc(obj, BaseModel),
                         obj.model_config.get("extra") == "forbid")
    name = getattr(obj, "__name__", None)
    if name in TYPING_NAMES:
        return TYPING_NAMES[name]
    raise UnsupportedType(repr(obj))


def _own_doc(cls: type, base: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc and doc != base.__doc__ else None


def _json_default(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _union(*options: Type) -> Type:
    """A union as pydantic sees it: flattened, with None (if any) last."""
    flat: list[Type] = []
    for option in options:
        flat.extend(option.options if isinstance(option, AnyOf) else (option,))
    flat.sort(key=lambda t: t == Prim("None"))
    return AnyOf(tuple(flat)) if len(flat) > 1 else flat[0]


def _is_tool_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Name) and target.id == "is_tool"
