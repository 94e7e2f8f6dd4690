"""Model output <-> function calls, as ACEBench reads `[ApiName(key='value', ...)]`.

The official evaluator strips *all* whitespace from the output (`"".join(text.split())`), parses
the rest as one Python expression, requires a list (or tuple) of calls, and turns each into
`{name: {keyword: value}}` (positional arguments are ignored; a call without keywords becomes
`{name: {}}`). Argument values follow the official resolver: literals, lists, dicts, tuples,
negation, bare names as strings, nested calls as dicts, subscripts as source text. Arithmetic
(`BinOp`) is evaluated, but here only over literals: the official `eval` would also run any
call hidden in it, which a grader must never do.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable
from typing import Any

Call = dict[str, dict[str, Any]]
"""One decoded call: {function_name: {argument: value}}."""


class CallParseError(ValueError):
    """The text is not a list of function calls."""


_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.BitOr: operator.or_, ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}


def _literal_arithmetic(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal_arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _literal_arithmetic(node.left), _literal_arithmetic(node.right)
        if (isinstance(node.op, (ast.Pow, ast.LShift)) and isinstance(right, (int, float))
                and abs(right) > 64):
            raise CallParseError("operand too large")
        if isinstance(node.op, ast.Mult) and any(isinstance(v, (str, bytes)) for v in (left, right)) \
                and any(isinstance(v, int) and v > 10_000 for v in (left, right)):
            raise CallParseError("repetition too large")
        return _BINOPS[type(node.op)](left, right)
    raise CallParseError(f"unsupported expression in arithmetic: {ast.unparse(node)}")


def _dotted_name(func: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def resolve_value(node: ast.expr, *, keywordless_call_as_text: bool = False) -> Any:
    """One argument value, resolved the way the official decoder does."""
    def resolve(n: ast.expr) -> Any:
        return resolve_value(n, keywordless_call_as_text=keywordless_call_as_text)

    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.operand, ast.Constant):
            raise CallParseError(f"unsupported unary operand: {ast.unparse(node)}")
        operand: Any = node.operand.value
        try:
            return -operand
        except TypeError:
            raise CallParseError(f"cannot negate {operand!r}") from None
    if isinstance(node, ast.List):
        return [resolve(v) for v in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(resolve(v) for v in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise CallParseError("dict unpacking is not a value")
        try:
            return {resolve(k): resolve(v) for k, v in zip(node.keys, node.values, strict=True)
                    if k is not None}
        except TypeError as exc:
            raise CallParseError(f"unusable dict key: {exc}") from None
    if isinstance(node, ast.BinOp):
        try:
            return _literal_arithmetic(node)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise CallParseError(f"bad arithmetic {ast.unparse(node)}: {exc}") from None
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        if not node.keywords:
            return ast.unparse(node) if keywordless_call_as_text else {_dotted_name(node.func): {}}
        return resolve_call(node, keywordless_call_as_text=keywordless_call_as_text)
    if isinstance(node, ast.Subscript):
        return f"{ast.unparse(node.value)}[{ast.unparse(node.slice)}]"
    raise CallParseError(f"unsupported value type {type(node).__name__}: {ast.unparse(node)}")


def resolve_call(node: ast.Call, *, keywordless_call_as_text: bool = False) -> Call:
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallParseError("**kwargs is not an argument")
        args[kw.arg] = resolve_value(kw.value, keywordless_call_as_text=keywordless_call_as_text)
    return {_dotted_name(node.func): args}


def _parse_expression(text: str) -> ast.expr:
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise CallParseError(f"invalid syntax: {exc}") from None


def decode_calls(text: str, *, drop_whitespace: bool = True) -> list[Call]:
    """The official decode for graded outputs: whitespace removed, a list of calls required."""
    body = _parse_expression("".join(text.split()) if drop_whitespace else text.strip())
    if not isinstance(body, (ast.List, ast.Tuple, ast.Set)):  # anything with `elts` upstream
        raise CallParseError(f"expected a list of calls, got {type(body).__name__}")
    calls: list[Call] = []
    for elem in body.elts:
        if not isinstance(elem, ast.Call):
            raise CallParseError(f"list element is not a call: {ast.unparse(elem)}")
        value = resolve_value(elem)
        calls.append(value)
    return calls


def decode_agent_calls(text: str) -> list[Call] | None:
    """The agent scenarios' decode: brackets added if missing, then stripped with quotes.

    Returns None when the text is a list holding something other than calls (the official
    agent then treats the message as text for the user); raises CallParseError when it does
    not parse at all, or has a dict argument upstream cannot write back (`dict_argument_name`).
    """
    func = text[1:] if text.startswith(" ") else text
    if not func:
        raise CallParseError("empty message")
    if not func.startswith("["):
        func = "[" + func
    if not func.endswith("]"):
        func = func + "]"
    body = _parse_expression(func.strip("[]'"))
    if isinstance(body, ast.Call):
        calls = [resolve_call(body, keywordless_call_as_text=True)]
    elif isinstance(body, (ast.List, ast.Tuple)):
        if not all(isinstance(e, ast.Call) for e in body.elts):
            return None
        calls = [resolve_call(e, keywordless_call_as_text=True) for e in body.elts
                 if isinstance(e, ast.Call)]
    else:
        return []
    for call in calls:
        for value in next(iter(call.values())).values():
            if isinstance(value, dict):
                dict_argument_name(value)
    return calls


def dict_argument_name(value: dict[Any, Any]) -> str:
    """The name a dict argument becomes in the agent scenarios' executor.

    Upstream writes each call back as Python source before running it, and writes a dict
    argument `{k: {...}}` as the call `k(...)` (recursively), which then fails as an undefined
    name. A dict that cannot be written so (empty, or a first value that is not a dict) makes the
    official decode fail: CallParseError here."""
    if not value:
        raise CallParseError("an empty dict argument")
    name, inner = next(iter(value.items()))
    if not isinstance(inner, dict):
        raise CallParseError(f"a dict argument {value!r} (upstream writes dicts back as calls)")
    for item in inner.values():
        if isinstance(item, dict):
            dict_argument_name(item)
    return str(name)


def calls_from_tool_calls(tool_calls: list[tuple[str, str]]) -> list[Call]:
    """Native tool calls (name, JSON arguments) as decoded calls, as the official FC path does."""
    calls: list[Call] = []
    for name, arguments in tool_calls:
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise CallParseError(f"tool call {name!r} has arguments that are not JSON: {exc.msg}") \
                from None
        if not isinstance(args, dict):
            raise CallParseError(f"tool call {name!r} arguments are not an object")
        calls.append({name: args})
    return calls


def render_calls(calls: list[Call]) -> str:
    """Calls back into the prompt format `[f(a='x', b=1), g()]` (Python literals)."""
    parts = []
    for call in calls:
        for name, args in call.items():
            inner = ", ".join(f"{key}={value!r}" for key, value in args.items())
            parts.append(f"{name}({inner})")
    return "[" + ", ".join(parts) + "]"
