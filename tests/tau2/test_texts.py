"""The model receives tau2-bench's own texts, byte for byte, read from a tau2-bench source tree.

Expected texts are derived here independently of k2eval's reader: the instruction constants
by a regular expression over `llm_agent.py`, and every tool's schema by tau2's own recipe run
on the real function (compiled alone from its source, body emptied): `docstring_parser` over
its `__doc__`, pydantic's `create_model("parameters", ...)` over its signature.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shutil
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docstring_parser import parse
from pydantic import Field, create_model
from tau2_helpers import is_agent_request, scripted_pair

import k2eval
from k2eval.adapters.tau2.data import load_guidelines, load_policy, load_tasks
from k2eval.adapters.tau2.simulation import user_scenario_text
from k2eval.adapters.tau2.texts import SourceError, load_texts, locate_source
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import FakeOpenAIServer, Reply

ServerFactory = Callable[..., FakeOpenAIServer]
TOOL_FILES = {"airline": ("domains/airline/tools.py", "AirlineTools"),
              "retail": ("domains/retail/tools.py", "RetailTools"),
              "telecom": ("domains/telecom/tools.py", "TelecomTools"),
              "telecom-user": ("domains/telecom/user_tools.py", "TelecomUserTools")}
TYPING = {name: getattr(typing, name) for name in ("Any", "Dict", "List", "Optional", "Union")}


@pytest.fixture(scope="session")
def tau2_src(shared_data: Path) -> Path:
    return shared_data / "tau2-bench-src"


def constant(path: Path, name: str) -> str:
    match = re.search(rf'^{name} = """(.*?)""".strip\(\)$', path.read_text(), re.S | re.M)
    assert match, f"{name} not found in {path}"
    return match.group(1).strip()


def tau2_schema(func: Callable[..., Any]) -> dict[str, Any]:
    """tau2's `Tool(func).openai_schema` (environment/tool.py), for a bound method."""
    doc = parse(func.__doc__ or "")
    docs = {p.arg_name: p for p in doc.params}
    params: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        default = ... if param.default is param.empty else param.default
        if name in docs:
            default = Field(default, description=docs[name].description)
        params[name] = (param.annotation, default)
    short, long = doc.short_description or "", doc.long_description or ""
    return {"type": "function",
            "function": {"name": func.__name__,
                         "description": short + "\n\n" + long if long else short,
                         "parameters": create_model("parameters", **params).model_json_schema()}}


def derived_schemas(path: Path, class_name: str,
                    namespace: dict[str, Any] | None = None) -> dict[str, dict[str, Any] | None]:
    """Each tool of the class in definition order; None where its signature names a type
    from a module that is not in `namespace` (a tau2 data model)."""
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    out: dict[str, dict[str, Any] | None] = {}
    for fn in cls.body:
        if not (isinstance(fn, ast.FunctionDef)
                and any("is_tool" in ast.unparse(d) for d in fn.decorator_list)):
            continue
        fn.decorator_list, fn.returns = [], None
        fn.body = [fn.body[0], ast.Pass()]  # the docstring, then nothing
        ns = {**TYPING, **(namespace or {})}
        try:
            module = ast.fix_missing_locations(ast.Module([fn], []))
            exec(compile(module, str(path), "exec", dont_inherit=True), ns)
        except NameError:
            out[fn.name] = None
            continue
        out[fn.name] = tau2_schema(types.MethodType(ns[fn.name], object()))
    return out


def as_pydantic_2_10(value: Any) -> Any:
    """pydantic 2.11+ writes a plain `dict` as {"additionalProperties": true, "type":
    "object"}; 2.10 (tau2-bench 0.1.3's locked version) as {"type": "object"}."""
    if value == {"additionalProperties": True, "type": "object"}:
        return {"type": "object"}
    if isinstance(value, dict):
        return {k: as_pydantic_2_10(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_pydantic_2_10(v) for v in value]
    return value


def play(domain: str, fake_openai: ServerFactory, tau2_root: Path, out: Path,
         data: Path | None = None, **options: Any) -> tuple[Any, list[dict[str, Any]]]:
    """One short conversation (the agent says "done", the user stops) through the engine."""
    server = fake_openai(scripted_pair([Reply(text="done")],
                                       lambda text: Reply(text="###STOP###" if "done" in text
                                                          else "Hello.")))
    task_id = load_tasks(tau2_root, domain)[0]["id"]
    result = k2eval.evaluate(f"tau2-{domain}", "openai:agent", base_url=server.base_url,
                             user_model=ModelSpec("openai:user", base_url=server.base_url),
                             data=str(data or tau2_root), item_ids=[task_id], k=1, out=out,
                             options=options)
    return result, server.requests


@pytest.mark.parametrize("domain", ["airline", "retail", "telecom"])
def test_the_model_receives_tau2s_exact_instruction_and_tool_texts(
        domain: str, tau2_src: Path, tau2_root: Path, fake_openai: ServerFactory,
        tmp_path: Path) -> None:
    package = tau2_src / "src" / "tau2"
    result, requests = play(domain, fake_openai, tau2_root, tmp_path, tau2_source=str(tau2_src))
    agent = next(r for r in requests if is_agent_request(r))
    user = next(r for r in requests if not is_agent_request(r))

    layout = constant(package / "agent/llm_agent.py", "SYSTEM_PROMPT")
    instruction = constant(package / "agent/llm_agent.py", "AGENT_INSTRUCTION")
    assert agent["messages"][0]["content"] == layout.format(
        agent_instruction=instruction, domain_policy=load_policy(tau2_root, domain))
    task = load_tasks(tau2_root, domain)[0]
    with_tools = domain == "telecom"
    assert user["messages"][0]["content"] == constant(
        package / "user/user_simulator.py", "SYSTEM_PROMPT").format(
        global_user_sim_guidelines=load_guidelines(tau2_root, with_tools=with_tools),
        instructions=user_scenario_text(task["user_scenario"]))

    sides = [(agent, domain)] + ([(user, "telecom-user")] if with_tools else [])
    compared = 0
    for request, kit in sides:
        path, class_name = TOOL_FILES[kit]
        expected = derived_schemas(package / path, class_name)
        sent = {tool["function"]["name"]: tool for tool in request["tools"]}
        assert list(sent) == list(expected)  # tau2's order: as defined in the class
        for name, schema in expected.items():
            if schema is not None:
                assert json.dumps(sent[name]) == json.dumps(schema), name
                compared += 1
    assert compared >= {"airline": 10, "retail": 15, "telecom": 41}[domain]
    assert result.summary["conditions"]["tool_texts"].startswith(
        f"tau2-bench source {package.resolve()}")


def test_hand_checked_airline_texts_reach_the_model(
        tau2_src: Path, tau2_root: Path, fake_openai: ServerFactory, tmp_path: Path) -> None:
    _, requests = play("airline", fake_openai, tau2_root, tmp_path, tau2_source=str(tau2_src))
    agent = next(r for r in requests if is_agent_request(r))
    tools = {t["function"]["name"]: t["function"] for t in agent["tools"]}
    assert tools["send_certificate"]["description"] == "Send a certificate to a user. Be careful!"
    assert tools["update_reservation_baggages"]["parameters"]["properties"]["payment_id"] == {
        "description": "The payment id stored in user profile, such as 'credit_card_7815826', "
                       "'gift_card_7815826', 'certificate_7815826'.",
        "title": "Payment Id", "type": "string"}
    assert tools["transfer_to_human_agents"]["description"] == (
        "Transfer the user to a human agent, with a summary of the user's issue.\n\n"
        "Only transfer if\n -  the user explicitly asks for a human agent\n"
        " -  given the policy and the available tools, you cannot solve the user's issue.")
    assert agent["messages"][0]["content"].startswith(
        "<instructions>\nYou are a customer service agent that helps the user according to "
        "the <policy> provided below.\nIn each turn you can either:\n")


def test_without_a_source_tree_the_run_warns_and_is_marked_as_own_wording(
        tau2_src: Path, tau2_root: Path, fake_openai: ServerFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAU2_SOURCE_DIR", raising=False)
    result, requests = play("retail", fake_openai, tau2_root, tmp_path)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning: tau2" in line]
    assert len(warnings) == 1 and "tau2_source" in warnings[0]
    expected = {"tool_texts": "k2eval wording", "official_texts": False, "max_tool_errors": None}
    assert result.summary["conditions"] == expected
    assert json.loads((result.path / "manifest.json").read_text())["conditions"] == expected
    agent = next(r for r in requests if is_agent_request(r))
    assert "Be helpful" in agent["messages"][0]["content"]


def test_a_tree_without_tau2s_data_models_is_marked_and_names_them(
        tau2_src: Path, tau2_root: Path, fake_openai: ServerFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    result, _ = play("airline", fake_openai, tau2_root, tmp_path, tau2_source=str(tau2_src))
    conditions = result.summary["conditions"]
    assert conditions["official_texts"] is False
    assert "k2eval wording for data models" in conditions["tool_texts"]
    assert "FlightInfo" in conditions["tool_texts"] and len(conditions["texts_sha256"]) == 16
    assert "lacks the data models" in capsys.readouterr().err


# A hand-made stand-in for tau2's data models (the shared tree lacks those files): the reader
# must describe them exactly as pydantic describes the same classes.
DATA_MODEL = '''
from enum import Enum
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

FlightType = Literal["round_trip", "one_way"]
CabinClass = Literal["business", "economy", "basic_economy"]
Insurance = Literal["yes", "no"]


class Seat(str, Enum):
    AISLE = "aisle"
    WINDOW = "window"


class FlightInfo(BaseModel):
    """A flight segment."""

    model_config = ConfigDict(extra="forbid")
    flight_number: str = Field(description="Flight number.")
    date: str = Field(description="Date of the flight.")
    seat: Seat = Field(Seat.AISLE, description="Preferred seat.")


class Person(BaseModel):
    first_name: str = Field(description="First name")
    last_name: str


class Passenger(Person):
    dob: Optional[str] = Field(None, description="Date of birth")


class Payment(BaseModel):
    payment_id: str = Field(..., description="Payment id")
    amount: int
'''


def test_data_models_are_read_from_the_tree_as_pydantic_describes_them(
        tau2_src: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tau2-bench"
    shutil.copytree(tau2_src, tree)
    model_file = tree / "src/tau2/domains/airline/data_model.py"
    model_file.write_text(textwrap.dedent(DATA_MODEL))
    texts = load_texts(str(tree), None)
    assert not {"FlightInfo", "Passenger", "Payment", "FlightType"} & set(texts.own_models)

    namespace: dict[str, Any] = {}
    exec(compile(model_file.read_text(), str(model_file), "exec", dont_inherit=True), namespace)
    expected = derived_schemas(tree / "src/tau2/domains/airline/tools.py", "AirlineTools",
                               namespace)
    sent = {t["function"]["name"]: t for t in texts.tools["AirlineTools"]}
    for name in ("book_reservation", "update_reservation_flights",
                 "update_reservation_passengers"):
        assert json.dumps(sent[name]) == json.dumps(as_pydantic_2_10(expected[name])), name
    flights = sent["book_reservation"]["function"]["parameters"]["properties"]["flights"]
    assert flights["items"]["anyOf"][1] == {"type": "object"}  # `FlightInfo | dict`, as 2.10


def test_the_source_tree_is_found_beside_the_data_in_a_checkout_or_named(
        tau2_src: Path, tau2_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAU2_SOURCE_DIR", raising=False)
    package = (tau2_src / "src" / "tau2").resolve()
    repo = tmp_path / "tau2-bench"
    (repo / "data" / "tau2").mkdir(parents=True)
    (repo / "src").symlink_to(tau2_src / "src")
    assert locate_source(None, repo / "data" / "tau2") == package
    assert locate_source(None, tau2_root) is None
    assert locate_source(str(package), None) == package
    monkeypatch.setenv("TAU2_SOURCE_DIR", str(tau2_src))
    assert locate_source(None, None) == package
    with pytest.raises(SourceError, match=r"--option tau2_source=.*no tau2-bench source tree"):
        locate_source(str(tmp_path), None)


def test_a_tree_missing_a_file_or_with_other_tools_is_refused(
        tau2_src: Path, tmp_path: Path) -> None:
    renamed, missing = tmp_path / "renamed", tmp_path / "missing"
    for tree in (renamed, missing):
        shutil.copytree(tau2_src, tree)
    tools = renamed / "src/tau2/domains/retail/tools.py"
    tools.write_text(tools.read_text().replace("def calculate(", "def calculate_sum("))
    with pytest.raises(SourceError, match=r"RetailTools differs .*'calculate', 'calculate_sum'"):
        load_texts(str(renamed), None)
    (missing / "src/tau2/domains/retail/tools.py").unlink()
    with pytest.raises(SourceError, match=r"lacks domains/retail/tools\.py"):
        load_texts(str(missing), None)


@pytest.mark.parametrize("annotation", [
    int, float, str | None, list[str], dict[str, int], "CabinClass", "FlightInfo",
    "list[Passenger | dict]", "APNSettings", "LineStatus", "Optional[Reservation]",
    "typing.Literal[1, 2]", "Union[None, FlightInfo]", "Union[FlightInfo, None, dict]",
    "list[Optional[Payment]]",
], ids=str)
def test_the_schema_writer_agrees_with_pydantic_2_10(annotation: Any) -> None:
    from k2eval.adapters.tau2 import airline, telecom
    from k2eval.adapters.tau2.schema import FieldSpec, parameters_schema
    from k2eval.adapters.tau2.texts import python_type

    if isinstance(annotation, str):
        annotation = eval(annotation, {**vars(airline), **vars(telecom), **TYPING,
                                       "typing": typing})
    fields = (FieldSpec("value", python_type(annotation), required=True, description="A."),)
    expected = create_model(
        "parameters", value=(annotation, Field(..., description="A."))).model_json_schema()
    assert json.dumps(parameters_schema(fields)) == json.dumps(as_pydantic_2_10(expected))


def test_rescoring_does_not_need_the_source_tree_the_run_was_sent_from(
        tau2_src: Path, tau2_root: Path, fake_openai: ServerFactory, tmp_path: Path) -> None:
    tree = tmp_path / "tau2-bench"
    shutil.copytree(tau2_src, tree)
    result, _ = play("retail", fake_openai, tau2_root, tmp_path / "runs", tau2_source=str(tree))
    attempt = json.loads((result.path / "attempts.jsonl").read_text().splitlines()[0])
    assert attempt["output"]["official_texts"] is False  # the tree lacks tau2's data models
    shutil.rmtree(tree)
    rescored = k2eval.rescore_run(result.path, progress=False)
    assert rescored.summary["score"] == result.summary["score"]
    assert rescored.summary["conditions"]["tool_texts"].startswith("unknown (--option tau2_source=")
    assert rescored.summary["conditions"]["official_texts"] is False
