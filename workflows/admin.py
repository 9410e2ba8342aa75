from django.contrib import admin

from workflows.models import AuditCheckpoint, AuditEvent, Case, Queue, Resolution


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "blind", "lease_seconds", "response_target",
                    "resolution_target"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members", "member_groups"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write: visible here, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "queue", "state", "priority", "assignee", "due_at",
                    "escalation_level"]
    list_filter = ["state", "queue"]
    search_fields = ["title"]
    list_select_related = ["queue", "assignee"]
    show_full_result_count = False


@admin.register(Resolution)
class ResolutionAdmin(ReadOnlyAdmin):
    list_display = ["case", "verdict", "reason_code", "resolved_by", "approved_by",
                    "created_at"]
    list_select_related = ["resolved_by", "approved_by"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "occurred_at", "actor_label", "verb", "object_type", "object_id"]
    list_filter = ["verb", "object_type"]
    search_fields = ["object_id", "actor_label"]
    show_full_result_count = False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["seq", "chain_hash", "created_at"]
