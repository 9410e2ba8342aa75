"""Governance as code: the documented example applied from nothing, export then apply is a
no-op, the plan says what changes field by field, bad shapes are refused at their path,
everything is audited, and a policy is only ever proposed."""

from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from exceptions_app.models import AiSystem, PolicyStatus, PolicyVersion, UseCase
from exceptions_app.services import governance, policies
from tests.factories import UserFactory, client_for, make_manager
from workflows.models import AuditEvent, Calendar, EscalationLevel, Queue, RaciAssignment

EXAMPLE = (Path(__file__).resolve().parents[2] / "docs" / "governance-example.yaml").read_text()


@pytest.fixture
def team(db):
    """The people the example names: mia (a manager, who applies), olivia (the owner),
    rita in the claims-reviewers group."""
    reviewers = Group.objects.create(name="claims-reviewers")
    rita = UserFactory(username="rita")
    rita.groups.add(reviewers)
    return {"mia": make_manager(username="mia"), "olivia": UserFactory(username="olivia"),
            "rita": rita}


def edited(text: str, change) -> str:
    document = yaml.safe_load(text)
    change(document)
    return yaml.safe_dump(document, sort_keys=False)


def test_the_example_sets_up_a_team_from_nothing_and_proposes_its_policy(team):
    result = governance.apply(EXAMPLE, actor=team["mia"])

    assert result.summary() == ("6 to create, 0 to change, 1 policy version(s) to propose, "
                                "0 unchanged.")
    use_case = UseCase.objects.get(slug="expense-claims")
    assert use_case.review_queue.slug == "claims-review"
    assert use_case.reason_codes[2] == {"code": "missing-receipt",
                                        "label": "The receipt is missing or unreadable"}
    assert set(Queue.objects.get(slug="claims-review").members.values_list(
        "username", flat=True)) == {"rita"}
    assert RaciAssignment.objects.filter(process=use_case.process, activity="policy_change",
                                         role="A", user=team["olivia"]).exists()
    assert list(EscalationLevel.objects.filter(process=use_case.process)
                .values_list("level", "queue__slug", "outcome")) == [
        (1, None, "none"), (2, "claims-escalations", "hold")]
    assert Queue.objects.get(slug="claims-review").sla_policies.get().calendar.name == (
        "Claims office, Amsterdam")
    assert AiSystem.objects.get(slug="receipt-reader").owner == team["mia"]
    policy, = PolicyVersion.objects.filter(use_case=use_case)
    assert (policy.status, policy.created_by, policy.rules.count()) == (
        PolicyStatus.PROPOSED, team["mia"], 3)


def test_every_object_the_file_writes_is_audited_as_the_person_applying(team):
    governance.apply(EXAMPLE, actor=team["mia"])

    verbs = set(AuditEvent.objects.filter(actor=team["mia"]).values_list("verb", flat=True))
    assert {"calendar.created", "process.created", "queue.created", "sla_policy.published",
            "use_case.created", "raci.changed", "escalation_chain.changed",
            "ai_system.created", "policy.drafted", "policy.proposed"} <= verbs
    assert not AuditEvent.objects.exclude(actor=team["mia"]).exists()


def test_the_author_cannot_approve_but_the_accountable_can(team):
    governance.apply(EXAMPLE, actor=team["mia"])
    policy = PolicyVersion.objects.get(use_case__slug="expense-claims")

    with pytest.raises(policies.PermissionDenied):
        policies.policy_approve(policy=policy, actor=team["mia"])
    policies.policy_approve(policy=policy, actor=team["olivia"])
    policies.policy_activate(policy=policy, actor=team["olivia"])

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.ACTIVE


def test_export_then_apply_changes_nothing_and_writes_no_event(team):
    governance.apply(EXAMPLE, actor=team["mia"])
    exported = governance.export_yaml()
    events = AuditEvent.objects.count()

    result = governance.apply(exported, actor=team["mia"])

    assert result.is_empty
    assert AuditEvent.objects.count() == events
    assert governance.export_yaml() == exported


def test_applying_the_same_file_twice_proposes_one_version(team):
    governance.apply(EXAMPLE, actor=team["mia"])
    second = governance.apply(EXAMPLE, actor=team["mia"])

    assert second.is_empty
    assert PolicyVersion.objects.filter(use_case__slug="expense-claims").count() == 1


def test_the_plan_names_each_changed_field_before_and_after_and_changes_nothing(team):
    governance.apply(EXAMPLE, actor=team["mia"])

    def change(document):
        document["queues"][0]["members"] = ["olivia", "rita"]
        document["use_cases"][0]["reason_codes"][0]["label"] = "The amount is wrong"

    plan = governance.plan(edited(EXAMPLE, change))

    changed = {(c.kind, c.key): c for c in plan.changes if c.action == governance.Action.CHANGE}
    assert set(changed) == {("queue", "claims-review"), ("use_case", "expense-claims")}
    assert changed[("queue", "claims-review")].fields == {
        "members": (["rita"], ["olivia", "rita"])}
    assert list(changed[("use_case", "expense-claims")].fields) == ["reason_codes"]
    assert '~ change queue claims-review\n    members: ["rita"] -> ["olivia", "rita"]' in (
        plan.text())
    assert ('    reason_codes[0].label: "The reader got the amount wrong" -> "The amount is '
            'wrong"') in plan.text()
    assert "= unchanged calendar Claims office, Amsterdam" in plan.text()
    assert list(Queue.objects.get(slug="claims-review").members.values_list(
        "username", flat=True)) == ["rita"]


def test_a_changed_policy_becomes_a_new_proposed_version_beside_the_active_one(team):
    governance.apply(EXAMPLE, actor=team["mia"])
    first = PolicyVersion.objects.get(use_case__slug="expense-claims")
    policies.policy_approve(policy=first, actor=team["olivia"])
    policies.policy_activate(policy=first, actor=team["olivia"])

    def change(document):
        document["use_cases"][0]["policy"]["rules"][0]["expression"] = "confidence < 0.9"

    result = governance.apply(edited(EXAMPLE, change), actor=team["mia"])

    proposal, = [c for c in result.changes if c.kind == "policy"]
    assert proposal.action == governance.Action.PROPOSE
    assert list(proposal.fields) == ["rules"]
    assert 'rules[0].expression: "confidence < 0.85" -> "confidence < 0.9"' in result.text()
    assert list(PolicyVersion.objects.filter(use_case__slug="expense-claims")
                .order_by("number").values_list("number", "status")) == [
        (1, PolicyStatus.ACTIVE), (2, PolicyStatus.PROPOSED)]


def test_a_calendar_changed_in_the_file_is_changed_through_its_audited_service(team):
    governance.apply(EXAMPLE, actor=team["mia"])

    def change(document):
        document["calendars"][0]["working_hours"]["fri"] = ["08:30-17:30"]

    governance.apply(edited(EXAMPLE, change), actor=team["mia"])

    calendar = Calendar.objects.get(name="Claims office, Amsterdam")
    assert calendar.working_hours["4"] == [["08:30", "17:30"]]
    event = AuditEvent.objects.get(verb="calendar.changed")
    assert event.data["after"]["working_hours"]["4"] == [["08:30", "17:30"]]


def test_a_member_taken_out_in_the_file_leaves_the_queue(team):
    governance.apply(EXAMPLE, actor=team["mia"])

    def change(document):
        document["queues"][0]["members"] = []

    governance.apply(edited(EXAMPLE, change), actor=team["mia"])

    assert not Queue.objects.get(slug="claims-review").members.exists()
    event = AuditEvent.objects.filter(verb="queue.changed").latest("id")
    assert event.data["after"] == {"members": []}


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda d: d["use_cases"][0].__setitem__("reason_codes", ["misread", "illegible"]),
     "use_cases[0].reason_codes[0]", "a reason code is a mapping"),
    (lambda d: d["use_cases"][0]["reason_codes"][2].__setitem__("label", ""),
     "use_cases[0].reason_codes[2].label", "cannot be empty"),
    (lambda d: d["use_cases"][0]["input_schema"].__setitem__("type", "thing"),
     "use_cases[0].input_schema", "Not a valid JSON Schema"),
    (lambda d: d["use_cases"][0]["policy"]["rules"][1].__setitem__("expression",
                                                                   "input.category =="),
     "use_cases[0].policy.rules[1].expression", "line 1"),
    (lambda d: d["queues"][0].__setitem__("members", ["rita", "nobody"]),
     "queues[0].members", "there is no active user 'nobody'"),
    (lambda d: d["queues"][0].__setitem__("lease", "half an hour"),
     "queues[0].lease", "is not a duration"),
    (lambda d: d["queues"][0]["sla_policy"]["targets"].pop(0),
     "queues[0].sla_policy.targets", "min_priority 0"),
    (lambda d: d["use_cases"][0].__setitem__("review_queue", "claims-revue"),
     "use_cases[0].review_queue", "there is no queue 'claims-revue'"),
    (lambda d: d["use_cases"][0]["raci"].__setitem__("reviewing", {"accountable": ["olivia"]}),
     "use_cases[0].raci.reviewing", "not an activity"),
    (lambda d: d["calendars"][0]["working_hours"].__setitem__("mon", ["17:30-08:30"]),
     "calendars[0]", "end before they start"),
    (lambda d: d["ai_systems"][0].__setitem__("callback_url", "ftp://claims.example.com/"),
     "ai_systems[0].callback_url", ""),
    (lambda d: d["queues"][1].__setitem__("colour", "blue"),
     "queues[1].colour", "not a field of a queue"),
])
def test_a_bad_shape_is_refused_at_its_path_and_nothing_is_written(team, change, path, words):
    with pytest.raises(governance.GovernanceError) as refused:
        governance.apply(edited(EXAMPLE, change), actor=team["mia"])

    assert any(problem.path == path and words in problem.message
               for problem in refused.value.problems), refused.value.problems
    assert not UseCase.objects.exists() and not Calendar.objects.exists()
    assert not AuditEvent.objects.exists()


def test_every_problem_is_reported_at_once(team):
    def change(document):
        document["use_cases"][0]["reason_codes"][1] = {"code": "x"}
        document["queues"][2]["members"] = ["ghost"]

    with pytest.raises(governance.GovernanceError) as refused:
        governance.plan(edited(EXAMPLE, change))

    assert {p.path for p in refused.value.problems} == {
        "use_cases[0].reason_codes[1].label", "queues[2].members"}


def test_text_that_is_not_yaml_is_refused_with_its_line(team):
    with pytest.raises(governance.GovernanceError) as refused:
        governance.plan("queues:\n  - slug: [unclosed\n")

    assert "Not readable as YAML (line" in str(refused.value)


def test_a_reviewer_may_not_apply_a_file(team):
    with pytest.raises(policies.PermissionDenied):
        governance.apply(EXAMPLE, actor=team["rita"])
    assert not AuditEvent.objects.exists()


# --- the command ------------------------------------------------------------------------

def test_the_command_plans_applies_and_exports(team, tmp_path, capsys):
    example = tmp_path / "team.yaml"
    example.write_text(EXAMPLE)

    call_command("governance", "plan", str(example))
    assert "+ create use case expense-claims" in capsys.readouterr().out
    assert not UseCase.objects.exists()

    call_command("governance", "apply", str(example), "--as", "mia")
    assert "Proposed policy versions wait" in capsys.readouterr().out

    exported = tmp_path / "exported.yaml"
    call_command("governance", "export", str(exported))
    call_command("governance", "plan", str(exported))
    assert capsys.readouterr().out.endswith(
        "0 to create, 0 to change, 0 policy version(s) to propose, 7 unchanged.\n")


def test_the_command_without_a_person_cannot_propose_a_policy(team, tmp_path):
    example = tmp_path / "team.yaml"
    example.write_text(EXAMPLE)

    with pytest.raises(CommandError, match=r"use_cases\[0\]\.policy: a policy version needs "
                                           r"a person"):
        call_command("governance", "apply", str(example))


# --- the API ----------------------------------------------------------------------------

def test_the_api_plans_applies_and_exports_for_a_manager(team):
    client = client_for(team["mia"])

    planned = client.post(reverse("governance-plan"), EXAMPLE, content_type="application/yaml")
    assert planned.status_code == 200
    assert planned.json()["summary"] == {"create": 6, "change": 0, "propose": 1,
                                         "unchanged": 0}
    applied = client.post(reverse("governance-apply"), EXAMPLE,
                          content_type="application/yaml")
    assert applied.status_code == 200
    exported = client.get(reverse("governance-export"))
    assert exported["Content-Type"] == "application/yaml"
    again = client.post(reverse("governance-apply"), exported.content,
                        content_type="application/yaml")
    assert again.json()["summary"]["unchanged"] == 7


def test_the_api_answers_400_with_every_problem_at_its_path(team):
    bad = edited(EXAMPLE, lambda d: d["use_cases"][0]["reason_codes"][2].pop("label"))

    response = client_for(team["mia"]).post(reverse("governance-apply"), bad,
                                            content_type="application/yaml")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"path": "use_cases[0].reason_codes[2].label",
                                           "message": "is required."}]}
    assert not UseCase.objects.exists()


@pytest.mark.parametrize("name", ["governance-export", "governance-plan", "governance-apply"])
def test_the_api_refuses_anyone_but_a_manager(team, name):
    client = client_for(team["olivia"])
    response = (client.get(reverse(name)) if name == "governance-export"
                else client.post(reverse(name), EXAMPLE, content_type="application/yaml"))

    assert response.status_code == 403
    assert not UseCase.objects.exists()
