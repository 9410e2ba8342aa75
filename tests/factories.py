"""factory_boy factories shared by every test module."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    PolicyStatus,
    PolicyVersion,
    Rule,
    RuleAction,
    Stage,
    UseCase,
)
from workflows.models import Activity, Case, Process, Queue, RaciAssignment, RaciRole


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


def make_manager(**kwargs):
    user = UserFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="manage_cases"))
    return get_user_model().objects.get(pk=user.pk)  # drop the permission cache


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"queue-{n}")
    name = factory.LazyAttribute(lambda queue: queue.slug.replace("-", " ").title())


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
        for activity in (Activity.REVIEW, Activity.POLICY_CHANGE):
            RaciAssignment.objects.get_or_create(process=use_case.process, activity=activity,
                                                 role=RaciRole.ACCOUNTABLE, user=extracted)


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


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    queue = factory.SubFactory(QueueFactory)
    title = factory.Sequence(lambda n: f"Case {n}")
    created_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda case: case.created_at + case.queue.resolution_target)
    response_due_at = factory.LazyAttribute(
        lambda case: case.created_at + case.queue.response_target)
