"""The audit log's use case filter (``workflows.hooks.AuditFilter``): a use case's events
are those of its cases, of the use case itself, of its policy versions and of its
process. Registered in ``ExceptionsAppConfig.ready``."""

from django.db.models import Q

from exceptions_app.models import Decision, PolicyVersion, UseCase
from workflows.hooks import AuditFilter


def use_case_choices() -> list[tuple[str, str]]:
    return list(UseCase.objects.order_by("name").values_list("slug", "name"))


def use_case_events(*, value: str) -> Q | None:
    use_case = UseCase.objects.filter(slug=value).values("pk", "process_id").first()
    if use_case is None:
        return None
    policies = [str(pk) for pk in PolicyVersion.objects.filter(use_case=use_case["pk"])
                .values_list("pk", flat=True)]
    condition = (Q(case__in=Decision.objects.filter(use_case=use_case["pk"], case__isnull=False)
                   .values("case"))
                 | Q(object_type="use_case", object_id=str(use_case["pk"]))
                 | Q(object_type="policy_version", object_id__in=policies))
    if use_case["process_id"]:
        condition |= Q(object_type="process", object_id=str(use_case["process_id"]))
    return condition


USE_CASE_FILTER = AuditFilter(name="use_case", label="Use case", choices=use_case_choices,
                              condition=use_case_events)
