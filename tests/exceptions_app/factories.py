"""factory_boy factories of the domain (use cases, policies, AI systems, decisions).

The engine's (people, queues, cases) are in ``tests/factories.py``.
"""

import factory
from django.utils import timezone

from exceptions_app.activities import DomainActivity
from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    Decision,
    PolicyStatus,
    PolicyVersion,
    Route,
    Rule,
    RuleAction,
    Stage,
    UseCase,
)
from tests.factories import QueueFactory, UserFactory, make_case
from workflows.models import Activity, Process, RaciAssignment, RaciRole

INVOICE_OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["action", "amount"],
    "properties": {"action": {"enum": ["approve", "hold", "reject"]},
                   "amount": {"type": "number", "minimum": 0}},
}


class UseCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UseCase
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"use-case-{n}")
    name = factory.LazyAttribute(lambda use_case: use_case.slug.replace("-", " ").title())
    stage = Stage.ASSIST
    review_queue = factory.SubFactory(QueueFactory)
    qa_queue = factory.SubFactory(QueueFactory, blind=True)
    reason_codes = [{"code": "wrong-amount", "label": "The amount is wrong"},
                    {"code": "policy", "label": "Against policy"}]

    @factory.post_generation
    def owner(use_case, create, extracted, **kwargs):
        """``owner=person``: a process whose RACI matrix names them Accountable for
        review (the business owner) and for policy changes."""
        if not create or extracted is None:
            return
        if use_case.process is None:
            use_case.process, _ = Process.objects.get_or_create(
                slug=use_case.slug, defaults={"name": use_case.name})
            use_case.save(update_fields=["process"])
        for activity in (Activity.REVIEW, DomainActivity.POLICY_CHANGE):
            RaciAssignment.objects.get_or_create(process=use_case.process, activity=activity,
                                                 role=RaciRole.ACCOUNTABLE, user=extracted)

    @factory.post_generation
    def drafter(use_case, create, extracted, **kwargs):
        """``drafter=person``: named Responsible for policy changes (writes and proposes
        drafts; after ``owner``, whose process it joins)."""
        if not create or extracted is None:
            return
        if use_case.process is None:
            use_case.process, _ = Process.objects.get_or_create(
                slug=use_case.slug, defaults={"name": use_case.name})
            use_case.save(update_fields=["process"])
        RaciAssignment.objects.get_or_create(
            process=use_case.process, activity=DomainActivity.POLICY_CHANGE,
            role=RaciRole.RESPONSIBLE, user=extracted)


class PolicyVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyVersion

    use_case = factory.SubFactory(UseCaseFactory)
    number = factory.Sequence(lambda n: n + 1)
    text = "Approve confident decisions; people check the rest."
    status = PolicyStatus.ACTIVE
    default_action = RuleAction.AUTO
    created_by = factory.SubFactory(UserFactory)
    activated_at = factory.LazyFunction(timezone.now)


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    policy = factory.SubFactory(PolicyVersionFactory)
    position = factory.Sequence(lambda n: n)
    name = factory.Sequence(lambda n: f"rule-{n}")
    description = "Low confidence: a person checks it"
    expression = "confidence < 0.9"
    action = RuleAction.REVIEW


class AiSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AiSystem
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"ai-{n}")
    name = factory.LazyAttribute(lambda system: system.slug.upper())
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def use_cases(self, create, extracted, **kwargs):
        if create and extracted:
            self.use_cases.add(*extracted)


def issue_key(ai_system: AiSystem) -> str:
    _, key = AiSystemAPIKey.objects.create_key(name="test", ai_system=ai_system)
    return key


def make_decision_case(use_case, *, queue=None, external_id="inv-1", confidence=0.62,
                       four_eyes=False, ai_system=None, **case_fields):
    """A decision routed to review, with its open case (as intake leaves them)."""
    policy = use_case.policies.filter(status="active").first() or PolicyVersionFactory(
        use_case=use_case)
    ai_system = ai_system or AiSystemFactory(slug="invoice-bot", use_cases=[use_case])
    case = make_case(queue or use_case.review_queue, four_eyes=four_eyes,
                     title=f"Invoices: {external_id}", **case_fields)
    decision = Decision.objects.create(
        ai_system=ai_system, use_case=use_case, external_id=external_id,
        body_hash="0" * 64, model_version="extractor-3.2.1", confidence=confidence,
        input={"vendor": "ACME GmbH", "po_amount": 4100.0, "currency": "EUR"},
        output={"action": "approve", "amount": 4180.0},
        explanation="Read the total from the last page.", received_at=timezone.now(),
        policy_version=policy, stage=use_case.stage, route=Route.REVIEW,
        reasons=[{"rule": "low-confidence", "action": "review",
                  "text": "Confidence under 0.9: a person checks the extraction"}],
        case=case)
    return decision


