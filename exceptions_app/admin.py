from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    Decision,
    LabelledExample,
    PolicyVersion,
    Rule,
    UseCase,
)
from workflows.admin import ReadOnlyAdmin


@admin.register(UseCase)
class UseCaseAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "stage", "review_queue", "qa_queue"]
    prepopulated_fields = {"slug": ["name"]}
    # Stage moves need evidence and sign-off: they are not a field to flip here.
    readonly_fields = ["stage"]


class RuleInline(admin.TabularInline):
    model = Rule
    extra = 0
    ordering = ["position"]

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_frozen

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Drafts are edited here; a bad CEL expression is refused on save (Rule.clean)."""

    list_display = ["__str__", "status", "default_action", "created_by", "approved_by",
                    "activated_at"]
    list_filter = ["status", "use_case"]
    inlines = [RuleInline]
    readonly_fields = ["status", "approved_by", "approved_at", "activated_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_frozen


@admin.register(AiSystem)
class AiSystemAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "owner", "is_active", "callback_url"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["use_cases"]


@admin.register(AiSystemAPIKey)
class AiSystemAPIKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "ai_system"]
    list_filter = [*APIKeyModelAdmin.list_filter, "ai_system"]


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
