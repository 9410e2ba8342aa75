from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html

from workflows.models import (
    AuditCheckpoint,
    AuditEvent,
    Case,
    DeliveryAttempt,
    EscalationLevel,
    Notification,
    OutboxMessage,
    Process,
    Queue,
    RaciAssignment,
    Resolution,
    ReviewerStatus,
)
from workflows.services import assignment


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


# --- The outbox and notifications: written by services, relayed by Celery -------------

class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "succeeded", "status_code", "duration_ms", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel", "recipient", "subject", "status", "attempts",
                    "next_attempt_at", "case_id"]
    list_filter = ["status", "channel"]
    search_fields = ["dedup_key", "recipient", "=id"]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    show_full_result_count = False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "text", "case_id", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "text"]
    list_select_related = ["user"]
    raw_id_fields = ["user", "message", "case"]
    show_full_result_count = False


# --- Who owns the work: processes, RACI, escalation chains, availability -----------------


class RaciAssignmentInline(admin.TabularInline):
    """Read-only here: the matrix page edits it through the service, so that every change
    is audited with before and after (I7)."""

    model = RaciAssignment
    fields = ["activity", "role", "user", "group"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "RACI matrix (edit it on the matrix page: every change is audited)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EscalationLevelInline(admin.StackedInline):
    model = EscalationLevel
    extra = 0
    filter_horizontal = ["users"]
    fields = [("level", "target", "time_limit"), "users", "queue",
              ("notify_informed", "consult", "consult_required"), "outcome"]


@admin.register(Process)
class ProcessAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "matrix_link"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RaciAssignmentInline, EscalationLevelInline]

    @admin.display(description="RACI matrix")
    def matrix_link(self, obj):
        return format_html('<a href="{}">Edit who owns what</a>',
                           reverse("raci-matrix", args=[obj.slug]))


@admin.register(ReviewerStatus)
class ReviewerStatusAdmin(ReadOnlyAdmin):
    """Changed through ``assignment.set_away`` / ``set_available`` (audited), never by hand."""

    list_display = ["user", "available", "away_since", "delegate"]
    list_filter = ["available"]
    list_select_related = ["user", "delegate"]
    search_fields = ["user__username"]
    actions = ["mark_available"]

    @admin.action(description="Mark as back (available)")
    def mark_available(self, request, queryset):
        try:
            for status in queryset.select_related("user"):
                assignment.set_available(user=status.user, actor=request.user)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{queryset.count()} reviewer(s) marked available.",
                          messages.SUCCESS)
