"""Print the case state machine as a Mermaid ``stateDiagram-v2``, read from Case's
django-fsm transitions (docs/ARCHITECTURE.md holds its output; a test keeps them equal)."""

from collections import defaultdict

from django.core.management.base import BaseCommand

from workflows.models import Case, CaseState


def case_state_graph() -> str:
    """The graph as Mermaid text: states in ``CaseState`` order, one edge per
    (source, target) with the transitions' names, the closed states as final ones."""
    field = Case._meta.get_field("state")
    order = {state: n for n, state in enumerate(CaseState.values)}
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for transition in field.get_all_transitions(Case):
        sources = CaseState.values if transition.source in ("*", "+") else [transition.source]
        for source in sources:
            # No target: the transition keeps the state (a loop on its source).
            edges[(source, transition.target or source)].append(transition.name)
    leaving = {source for source, _ in edges}
    lines = ["stateDiagram-v2", f"    [*] --> {field.default}"]
    for (source, target), names in sorted(
            edges.items(), key=lambda edge: (order[edge[0][0]], order[edge[0][1]])):
        lines.append(f"    {source} --> {target}: {', '.join(sorted(names))}")
    lines += [f"    {state} --> [*]" for state in CaseState.values if state not in leaving]
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Print the case state machine (Case's django-fsm transitions) as Mermaid."

    def handle(self, *args, **options):
        self.stdout.write(case_state_graph(), ending="")
