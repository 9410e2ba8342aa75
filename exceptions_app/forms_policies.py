"""The policy editor's forms: the text and default beside an ordered formset of rules
(``ORDER`` reorders them, ``DELETE`` removes one, "Add a rule" appends an empty row).
They only parse; the draft services check and save (``services/policies.py``)."""

from django import forms
from django.db.models import Q

from exceptions_app.models import PolicyVersion, RuleAction, UseCase
from exceptions_app.services.policies import RuleSpec
from workflows.models import Queue


class PolicyTextForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "class": "policy-editor__text"}),
        label="The policy, in business language (Markdown)")
    default_action = forms.ChoiceField(choices=RuleAction.choices,
                                       label="When no rule matches")
    default_reason = forms.CharField(max_length=300, label="Its reason, in a reviewer's words")
    default_priority = forms.IntegerField(min_value=0, max_value=100, label="Its priority")


class RuleForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="Reasons name the rule: lower case "
                                                     "and dashes, like low-confidence.")
    description = forms.CharField(max_length=300, label="Why, in a reviewer's words")
    expression = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false",
                                                             "class": "mono"}),
                                 label="When (CEL)")
    action = forms.ChoiceField(choices=RuleAction.choices)
    queue = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    priority = forms.IntegerField(min_value=0, max_value=100, initial=50)
    four_eyes = forms.BooleanField(required=False, label="A second person approves")

    def __init__(self, *args, queues: list[Queue], **kwargs):
        super().__init__(*args, **kwargs)
        self.queues = {queue.pk: queue for queue in queues}
        self.fields["queue"].choices = [("", "The use case's review queue"),
                                        *((queue.pk, queue.name) for queue in queues)]

    def clean_queue(self) -> Queue | None:
        chosen = self.cleaned_data["queue"]
        return None if chosen is None else self.queues[chosen]


def rule_queues(use_case: UseCase) -> list[Queue]:
    """The queues a rule of the use case may send cases to, read once for every row."""
    return list(Queue.objects.filter(
        Q(pk=use_case.review_queue_id) | Q(pk=use_case.qa_queue_id)
        | (Q(process=use_case.process_id) if use_case.process_id else Q(pk__in=[])))
        .order_by("name"))


ROW_FIELDS = ("ORDER", "name", "description", "expression", "action", "queue", "priority",
              "four_eyes", "DELETE")
RuleFormSet = forms.formset_factory(RuleForm, extra=0, can_order=True, can_delete=True)


def editor_forms(*, use_case: UseCase, policy: PolicyVersion | None = None, data=None,
                 extra_rule: bool = False):
    """The text form and the rules formset, filled from ``data`` or from ``policy``."""
    row_kwargs = {"queues": rule_queues(use_case)}
    if data is not None:
        if extra_rule:
            # "Add a rule": the rows as typed (unchecked until saved) and an empty one.
            rows = [{name: data.get(f"rules-{index}-{name}") for name in ROW_FIELDS}
                    for index in range(int(data.get("rules-TOTAL_FORMS") or 0))]
            rows.append({"ORDER": len(rows) + 1, "action": RuleAction.REVIEW, "priority": 50})
            return PolicyTextForm(data), RuleFormSet(prefix="rules", initial=rows,
                                                     form_kwargs=row_kwargs)
        return (PolicyTextForm(data),
                RuleFormSet(data, prefix="rules", form_kwargs=row_kwargs))
    text = PolicyTextForm(initial={
        "text": policy.text, "default_action": policy.default_action,
        "default_reason": policy.default_reason, "default_priority": policy.default_priority})
    initial = [{"ORDER": rule.position, "name": rule.name, "description": rule.description,
                "expression": rule.expression, "action": rule.action,
                "queue": rule.queue_id, "priority": rule.priority, "four_eyes": rule.four_eyes}
               for rule in policy.rules.order_by("position")]
    return text, RuleFormSet(prefix="rules", initial=initial,
                             form_kwargs=row_kwargs)


def _ordered(rules) -> list[dict]:
    """The rows by their numbers; a row given the number another holds goes before it
    (typing 2 on the last rule moves it to second place)."""
    rows = [(index, dict(form.cleaned_data)) for index, form in enumerate(rules.forms)
            if form.cleaned_data]

    def place(pair):
        index, row = pair
        order = row.get("ORDER")
        if order is None:
            return (1, 0, 0, index)
        return (0, order, 0 if order != index + 1 else 1, index)

    return [row for _, row in sorted(rows, key=place)]


def rule_specs(rules) -> list[RuleSpec]:
    """The kept rows, in the order their ``ORDER`` numbers give."""
    return [RuleSpec(name=row["name"], description=row["description"],
                     expression=row["expression"], action=row["action"], queue=row["queue"],
                     priority=row["priority"], four_eyes=row["four_eyes"])
            for row in _ordered(rules) if not row.get("DELETE")]
