"""docs/ARCHITECTURE.md's case state graph is the one the model's transitions draw."""

import re
from io import StringIO
from pathlib import Path

from django.core.management import call_command

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def test_the_documented_state_graph_is_the_one_the_transitions_draw():
    printed = StringIO()
    call_command("case_state_graph", stdout=printed)

    [documented] = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```",
                              ARCHITECTURE.read_text(), flags=re.S)
    assert documented == printed.getvalue(), (
        "The case state graph in docs/ARCHITECTURE.md is out of date: paste the output "
        "of `python manage.py case_state_graph` there.")


def test_the_graph_starts_open_and_ends_resolved_or_cancelled():
    printed = StringIO()
    call_command("case_state_graph", stdout=printed)
    lines = printed.getvalue().splitlines()

    assert lines[:2] == ["stateDiagram-v2", "    [*] --> open"]
    assert [line for line in lines if line.endswith("--> [*]")] == [
        "    resolved --> [*]", "    cancelled --> [*]"]
    assert "    pending_approval --> resolved: approve" in lines
