"""bash / str_replace_editor / submit over a real Docker sandbox of the synthetic instance."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from k2eval.adapters.swebench import sandbox_limits
from k2eval.adapters.swebench.network import NetworkChoice
from k2eval.agents.swe_tools import SweTools, truncate_middle
from k2eval.sandbox import SandboxLimits, docker_sandbox
from k2eval.spec import load_task

pytestmark = pytest.mark.docker

CORE = "/testbed/wordstats/core.py"


@pytest.fixture
async def tools(synthetic_image: str) -> AsyncIterator[SweTools]:
    limits = SandboxLimits(**sandbox_limits(load_task("swebench-verified"),
                                            NetworkChoice("none", "none")))
    async with docker_sandbox(synthetic_image, limits, purpose="swe-tools-test") as sandbox:
        tools = SweTools(sandbox, env_setup="source /opt/venv/bin/activate",
                         command_timeout=120, max_observation_chars=2000)
        await tools.start()
        yield tools


def edit(**args: object) -> str:
    return json.dumps(args)


async def test_bash_keeps_directory_and_exports_and_reports_exit_codes(tools: SweTools) -> None:
    first = await tools.call("bash", edit(command="cd wordstats && export GREETING=hi && pwd"))
    assert first.output == "/testbed/wordstats" and not first.error
    second = await tools.call("bash", {"command": "pwd; echo $GREETING; which python"})
    assert second.output.splitlines() == ["/testbed/wordstats", "hi", "/opt/venv/bin/python"]
    failed = await tools.call("bash", {"command": "ls /nope"})
    assert "No such file or directory" in failed.output and "[exit code 2]" in failed.output
    tests = await tools.call("bash", {"command": "cd /testbed && pytest -q tests 2>&1 | tail -1"})
    assert "4 passed" in tests.output
    root = await tools.call("bash", {"command": "id -u; git config --global user.name k2"})
    assert root.output == "0"  # root, as in the official harness (writes /root/.gitconfig)


async def test_bash_timeout_and_truncation(tools: SweTools) -> None:
    tools.command_timeout = 3
    slow = await tools.call("bash", {"command": "echo started; sleep 30"})
    assert slow.error and "timed out after 3 s" in slow.output and "started" in slow.output
    tools.command_timeout = 120
    after = await tools.call("bash", {"command": "pwd"})
    assert after.output == "/testbed"  # the shell state survives a timed-out command
    long = await tools.call("bash", {"command": "seq 1 5000"})
    assert long.output.startswith("1\n2\n") and long.output.endswith("4999\n5000")
    assert "characters elided" in long.output and len(long.output) < 2300
    assert truncate_middle("abc", 10) == "abc"


async def test_view_file_range_and_directory(tools: SweTools) -> None:
    whole = await tools.call("str_replace_editor", edit(command="view", path=CORE))
    assert "     4\tdef count_words(text):" in whole.output
    part = await tools.call("str_replace_editor", edit(command="view", path=CORE,
                                                         view_range=[4, 5]))
    assert part.output.splitlines()[1:] == [
        "     4\tdef count_words(text):",
        '     5\t    """Return the number of words in `text`; words are separated by whitespace."""']
    to_end = await tools.call("str_replace_editor", edit(command="view", path=CORE,
                                                           view_range=[23, -1]))
    assert to_end.output.splitlines()[-1] == "    24\t    return counts"
    bad = await tools.call("str_replace_editor", edit(command="view", path=CORE,
                                                        view_range=[30, 40]))
    assert bad.error and "outside the file's 24 lines" in bad.output
    listing = await tools.call("str_replace_editor", edit(command="view", path="/testbed"))
    assert "/testbed/wordstats/core.py" in listing.output and "/.git" not in listing.output
    relative = await tools.call("str_replace_editor", edit(command="view", path="wordstats"))
    assert relative.error and "absolute path" in relative.output


async def test_str_replace_must_match_exactly_once_and_keeps_file_mode(tools: SweTools) -> None:
    await tools.call("bash", {"command": f"chmod 755 {CORE}"})
    missing = await tools.call("str_replace_editor", edit(
        command="str_replace", path=CORE, old_str="return len(text.split( ))", new_str="x"))
    assert missing.error and "does not occur verbatim" in missing.output
    many = await tools.call("str_replace_editor", edit(
        command="str_replace", path=CORE, old_str="text", new_str="x"))
    assert many.error and "occurs" in many.output and "[1, 4, 5, 6, 8" in many.output
    done = await tools.call("str_replace_editor", edit(
        command="str_replace", path=CORE, old_str='return len(text.split(" "))',
        new_str="return len(text.split())"))
    assert not done.error and "     8\t    return len(text.split())" in done.output
    check = await tools.call("bash", {"command": f"stat -c %a {CORE}; git diff --stat"})
    assert check.output.splitlines()[0] == "755"
    assert "1 file changed, 1 insertion(+), 1 deletion(-)" in check.output
    undo = await tools.call("str_replace_editor", edit(command="undo_edit", path=CORE))
    assert not undo.error
    clean = await tools.call("bash", {"command": "git -c core.fileMode=false diff; echo end"})
    assert clean.output == "end"


async def test_create_insert_and_undo(tools: SweTools) -> None:
    path = "/testbed/scripts/repro.py"
    created = await tools.call("str_replace_editor", edit(command="create", path=path,
                                                            file_text="a = 1\nc = 3\n"))
    assert not created.error
    again = await tools.call("str_replace_editor", edit(command="create", path=path,
                                                          file_text="x"))
    assert again.error and "never overwrites" in again.output
    inserted = await tools.call("str_replace_editor", edit(command="insert", path=path,
                                                             insert_line=1, new_str="b = 2"))
    assert not inserted.error
    at_top = await tools.call("str_replace_editor", edit(command="insert", path=path,
                                                           insert_line=0, new_str="# top\n"))
    assert not at_top.error
    out_of_range = await tools.call("str_replace_editor", edit(command="insert", path=path,
                                                                 insert_line=9, new_str="z"))
    assert out_of_range.error and "[0, 4]" in out_of_range.output
    content = await tools.call("bash", {"command": f"cat {path}"})
    assert content.output == "# top\na = 1\nb = 2\nc = 3"
    await tools.call("str_replace_editor", edit(command="undo_edit", path=path))
    await tools.call("str_replace_editor", edit(command="undo_edit", path=path))
    await tools.call("str_replace_editor", edit(command="undo_edit", path=path))
    gone = await tools.call("bash", {"command": f"test -e {path} && echo exists || echo gone"})
    assert gone.output == "gone"
    nothing = await tools.call("str_replace_editor", edit(command="undo_edit", path=CORE))
    assert nothing.error and "no edit" in nothing.output


async def test_bad_calls_are_error_observations(tools: SweTools) -> None:
    assert (await tools.call("bash", "{not json")).error
    assert (await tools.call("bash", "{}")).error
    assert (await tools.call("python", "{}")).error
    unknown = await tools.call("str_replace_editor", edit(command="delete", path=CORE))
    assert unknown.error and "unknown command" in unknown.output
    submitted = await tools.call("submit", "")
    assert submitted.submitted and not submitted.error


async def test_patch_collection_keeps_source_changes_only(tools: SweTools,
                                                          synthetic_row: dict[str, object]) -> None:
    from k2eval.adapters.swebench.agentic import AgentSettings, collect_patch, untracked_files

    sandbox = tools.sandbox
    await tools.call("bash", {"command": "echo scratch > /testbed/notes.txt"})
    preexisting = await untracked_files(sandbox)
    assert preexisting == {"notes.txt"}
    edits = await tools.call("bash", {"command": (
        "git mv wordstats/__init__.py wordstats/api.py && echo '# moved' >> wordstats/api.py"
        " && rm README.md && echo 'x = 1' > wordstats/extra.py && echo more >> notes.txt"
        " && printf '\\000\\377' > wordstats/data.bin && echo 'def test_x(): pass' > tests/test_x.py"
        " && git -c user.name=a -c user.email=a@b commit -qam wip && echo committed")})
    assert edits.output == "committed"  # a commit must not hide changes from the base commit
    base = str(synthetic_row["base_commit"])
    patch, excluded = await collect_patch(sandbox, base, preexisting, AgentSettings())
    assert excluded == {"binary": ["wordstats/data.bin"], "test": ["tests/test_x.py"],
                        "preexisting": ["notes.txt"]}
    assert "+# moved" in patch and "deleted file mode" in patch and "+x = 1" in patch
    everything, _ = await collect_patch(sandbox, base, set(), AgentSettings(
        exclude_test_files=False, exclude_binary_files=False))
    assert "tests/test_x.py" in everything and "notes.txt" in everything
    # the patch applies to a pristine checkout of the base commit
    await tools.call("bash", {"command": f"git reset -q --hard {base} && git clean -fdq"})
    check = await sandbox.exec(["git", "apply", "--check", "-"], timeout=30, workdir="/testbed",
                               stdin=patch)
    assert check.exit_code == 0, check.stderr
