from django import forms
from django.contrib import admin, messages
from django.db import models
from rest_framework_api_key.admin import APIKeyModelAdmin

from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    Decision,
    LabelledExample,
    PolicyStatus,
    PolicyVersion,
    Rule,
    UseCase,
)
from exceptions_app.services import api_keys, policies, use_cases
from exceptions_app.services.policies import RuleSpec
from workflows import db
from workflows.admin import ReadOnlyAdmin, ServiceAdmin


@admin.register(UseCase)
class UseCaseAdmin(ServiceAdmin):
    """Through ``use_cases.use_case_create`` / ``use_case_update``: audited. Its owner is
    the Accountable of its process's RACI matrix, edited on the process."""

    list_display = ["slug", "name", "stage", "review_queue", "qa_queue"]
    prepopulated_fields = {"slug": ["name"]}
    fields = [*use_cases.USE_CASE_SETTINGS, "stage"]
    # Stage moves need evidence and sign-off: they are not a field to flip here.
    readonly_fields = ["stage"]

    def create(self, request, values):
        return use_cases.use_case_create(actor=request.user, **values)

    def update(self, request, obj, changes):
        return use_cases.use_case_update(use_case=obj, actor=request.user, **changes)


class RuleInline(admin.TabularInline):
    model = Rule
    extra = 0
    ordering = ["position"]
    fields = ["position", "name", "description", "expression", "action", "queue", "priority",
              "four_eyes"]

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.status == PolicyStatus.DRAFT

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Drafts are written here through ``policies.policy_create_draft`` /
    ``policy_update_draft`` (audited; a bad CEL expression is refused on save, by
    Rule.clean); approved versions are frozen and only shown. Nothing is deleted."""

    list_display = ["__str__", "status", "default_action", "created_by", "approved_by",
                    "activated_at"]
    list_filter = ["status", "use_case"]
    inlines = [RuleInline]
    fields = ["use_case", "text", "default_action", "default_reason", "default_priority",
              "number", "status", "created_by", "approved_by", "approved_at", "activated_at"]
    readonly_fields = ["number", "status", "created_by", "approved_by", "approved_at",
                       "activated_at"]

    def get_readonly_fields(self, request, obj=None):
        # A draft stays with its use case.
        return [*self.readonly_fields, *(["use_case"] if obj is not None else [])]

    def has_change_permission(self, request, obj=None):
        # Only a draft changes (a proposed one goes back through its service's steps).
        return obj is None or obj.status == PolicyStatus.DRAFT

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The policy services own their transaction (durable): the admin's own atomic
        # block around the whole view would nest them.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        """Written with its rules in ``save_related``, in one service call."""

    def save_related(self, request, form, formsets, change):
        rules_formset, = formsets
        kept = sorted((f for f in rules_formset.forms
                       if f.cleaned_data and not rules_formset._should_delete_form(f)),
                      key=lambda f: f.cleaned_data["position"])
        rules = [RuleSpec(**{name: f.cleaned_data[name] for name in (
            "name", "description", "expression", "action", "queue", "priority",
            "four_eyes")}) for f in kept]
        values = {name: form.cleaned_data[name]
                  for name in ("text", "default_action", "default_reason", "default_priority")}
        if change:
            policies.policy_update_draft(policy=form.instance, actor=request.user,
                                         rules=rules, **values)
        else:
            saved = policies.policy_create_draft(use_case=form.cleaned_data["use_case"],
                                                 author=request.user, rules=rules, **values)
            db.mark_saved(form.instance, pk=saved.pk)
        # What the admin's own change message (LogEntry) reads.
        rules_formset.new_objects = rules_formset.changed_objects = []
        rules_formset.deleted_objects = []


class AiSystemForm(forms.ModelForm):
    def clean_document_hosts(self):
        # An empty box means no hosts: the form field would give JSON null.
        return self.cleaned_data["document_hosts"] or []


@admin.register(AiSystem)
class AiSystemAdmin(ServiceAdmin):
    """Through ``use_cases.ai_system_create`` / ``ai_system_update``: audited. The signing
    secret is never a form field: the action rotates it and shows the new one once."""

    form = AiSystemForm
    list_display = ["slug", "name", "owner", "is_active", "callback_url"]
    # A callback URL typed without a scheme means https: webhooks go over https only.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["use_cases"]
    fields = list(use_cases.AI_SYSTEM_EDITABLE)
    # A callback URL typed without a scheme is read as https (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["rotate_signing_secret"]

    def create(self, request, values):
        return use_cases.ai_system_create(actor=request.user, **values)

    def update(self, request, obj, changes):
        return use_cases.ai_system_update(ai_system=obj, actor=request.user, **changes)

    @admin.action(description="Rotate the webhook signing secret")
    def rotate_signing_secret(self, request, queryset):
        for ai_system in queryset:
            secret = use_cases.ai_system_rotate_secret(ai_system=ai_system,
                                                       actor=request.user)
            self.message_user(request, f"{ai_system.slug}: the new signing secret is "
                                       f"{secret} (shown once: install it at the receiver "
                                       "now).", messages.WARNING)


@admin.register(AiSystemAPIKey)
class AiSystemAPIKeyAdmin(APIKeyModelAdmin):
    """Issued through ``api_keys.issue_api_key`` and revoked through ``revoke_api_key``,
    both audited; nothing else about a key changes, and keys are never deleted."""

    list_display = [*APIKeyModelAdmin.list_display, "ai_system"]
    list_filter = [*APIKeyModelAdmin.list_filter, "ai_system"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return ["ai_system", "name"] if obj is None else ["prefix", "ai_system", "name",
                                                          "created", "revoked"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Viewing only; the list's action revokes.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        key = api_keys.issue_api_key(ai_system=form.cleaned_data["ai_system"],
                                     name=form.cleaned_data["name"], actor=request.user)
        saved = AiSystemAPIKey.objects.get_from_key(key)
        obj.prefix = saved.prefix
        db.mark_saved(obj, pk=saved.pk)
        self.message_user(request, f"The API key for {saved.name} is: {key}. Store it "
                                   "somewhere safe: it is not shown again.", messages.WARNING)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset.select_related("ai_system"):
            api_keys.revoke_api_key(api_key=api_key, actor=request.user)
        self.message_user(request, "Revoked; they are refused from the next request on.",
                          messages.SUCCESS)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "ai_system", "use_case", "external_id", "confidence", "route",
                    "received_at"]
    list_filter = ["route", "stage", "use_case", "ai_system"]
    search_fields = ["external_id"]
    list_select_related = ["ai_system", "use_case"]
    show_full_result_count = False


@admin.register(LabelledExample)
class LabelledExampleAdmin(ReadOnlyAdmin):
    list_display = ["decision", "use_case", "verdict", "reason_code", "reviewer", "created_at"]
    list_filter = ["verdict", "use_case"]
    list_select_related = ["use_case", "reviewer"]
