from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from workflows import db
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
    User,
)
from workflows.services import assignment, processes, queues, raci


class ServiceAdmin(admin.ModelAdmin):
    """An admin whose saves go through the audited service, as the pages' and the API's
    do (I7): never ``obj.save()`` or ``form.save_m2m()`` here.

    ``create``/``update`` get the form's values by field name (on a change, only those
    that changed) and answer the saved object. Deleting goes nowhere: rows other rows
    point at are retired through their service, not removed.
    """

    def create(self, request, values: dict):
        raise NotImplementedError

    def update(self, request, obj, changes: dict):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if change:
            self.update(request, obj, {name: form.cleaned_data[name]
                                       for name in form.changed_data})
            return
        saved = self.create(request, dict(form.cleaned_data))
        # The admin goes on with ``obj`` (its change message, the redirect).
        db.mark_saved(obj, pk=saved.pk)

    def save_related(self, request, form, formsets, change):
        # The service set the many-to-many fields already; the inlines save their way.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def has_delete_permission(self, request, obj=None):
        return False

admin.site.register(User, UserAdmin)


@admin.register(Queue)
class QueueAdmin(ServiceAdmin):
    """Through ``queues.queue_create`` / ``queue_update``: audited before and after."""

    list_display = ["name", "slug", "blind", "lease_seconds", "response_target",
                    "resolution_target"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members", "member_groups"]
    fields = list(queues.EDITABLE)

    def create(self, request, values):
        return queues.queue_create(actor=request.user, **values)

    def update(self, request, obj, changes):
        return queues.queue_update(queue=obj, actor=request.user, **changes)


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


class RaciFormSet(BaseInlineFormSet):
    def clean(self):
        # The service refuses a deactivated account in any cell it rewrites: say so at
        # the row, before anything is saved.
        super().clean()

        def deleting(form) -> bool:
            return self.can_delete and self._should_delete_form(form)

        touched = set()
        for form in self.forms:
            if form.instance.pk and (form.has_changed() or deleting(form)):
                touched.add((form.initial.get("activity"), form.initial.get("role")))
            if form.cleaned_data and form.has_changed() and not deleting(form):
                touched.add((form.cleaned_data.get("activity"), form.cleaned_data.get("role")))
        for form in self.forms:
            if not form.cleaned_data or deleting(form):
                continue
            user = form.cleaned_data.get("user")
            cell = (form.cleaned_data.get("activity"), form.cleaned_data.get("role"))
            if cell in touched and user is not None and not user.is_active:
                form.add_error("user", f"{user.get_username()} cannot hold a role: the "
                                       "account is deactivated. Remove this row.")


class RaciAssignmentInline(admin.TabularInline):
    """Managers edit the matrix here; ``ProcessAdmin.save_formset`` hands the rows to
    ``raci.edit_entries``, so every cell that changes is audited with before and after
    (I7), as on the matrix page and through the API."""

    model = RaciAssignment
    formset = RaciFormSet
    fields = ["activity", "role", "user", "group"]
    autocomplete_fields = ["user", "group"]
    extra = 0
    verbose_name_plural = "RACI matrix (every change is audited)"

    def has_add_permission(self, request, obj=None):
        return raci.may_edit(request.user)

    def has_change_permission(self, request, obj=None):
        return raci.may_edit(request.user)

    def has_delete_permission(self, request, obj=None):
        return raci.may_edit(request.user)


class EscalationLevelInline(admin.StackedInline):
    """Saved by ``ProcessAdmin.save_formset`` through ``processes.escalation_chain_edit``:
    one audit event with the chain before and after."""

    model = EscalationLevel
    extra = 0
    filter_horizontal = ["users"]
    fields = [("level", "target", "time_limit"), "users", "queue",
              ("notify_informed", "consult", "consult_required"), "outcome"]

    def has_add_permission(self, request, obj=None):
        return raci.may_edit(request.user)

    def has_change_permission(self, request, obj=None):
        return raci.may_edit(request.user)

    def has_delete_permission(self, request, obj=None):
        return raci.may_edit(request.user)


@admin.register(Process)
class ProcessAdmin(admin.ModelAdmin):
    """Every write goes through a service and is audited (I7): the process itself through
    ``processes.process_create`` / ``process_update`` / ``process_delete``, the matrix
    through ``raci.edit_entries``, the chain through ``processes.escalation_chain_edit``."""

    list_display = ["name", "slug", "matrix_link"]
    prepopulated_fields = {"slug": ["name"]}
    fields = list(processes.PROCESS_SETTINGS)
    inlines = [RaciAssignmentInline, EscalationLevelInline]

    @admin.display(description="RACI matrix")
    def matrix_link(self, obj):
        return format_html('<a href="{}">Edit who owns what</a>',
                           reverse("raci-matrix", args=[obj.slug]))

    def has_delete_permission(self, request, obj=None):
        # Deleting a process empties its matrix, which only managers may change.
        return super().has_delete_permission(request, obj) and raci.may_edit(request.user)

    def save_model(self, request, obj, form, change):
        if change:
            if form.changed_data:
                processes.process_update(process=obj, actor=request.user,
                                         **{name: form.cleaned_data[name]
                                            for name in form.changed_data})
            return
        saved = processes.process_create(actor=request.user, **form.cleaned_data)
        db.mark_saved(obj, pk=saved.pk)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        # Never formset.save(): the services write the rows and audit them.
        deleted = [f for f in formset.deleted_forms if f.instance.pk]
        edited = [f for f in formset.forms
                  if f.has_changed() and not formset._should_delete_form(f)]
        added = [f for f in edited if f.instance.pk is None]
        changed = [f for f in edited if f.instance.pk is not None]
        if formset.model is RaciAssignment:
            entry_fields = ["activity", "role", "user", "group"]
            if added or changed or deleted:
                raci.edit_entries(
                    process=form.instance, actor=request.user,
                    added=[tuple(f.cleaned_data[name] for name in entry_fields)
                           for f in added],
                    changed={f.instance.pk: tuple(f.cleaned_data[name]
                                                  for name in entry_fields)
                             for f in changed},
                    removed=[f.instance.pk for f in deleted])
        elif added or changed or deleted:
            processes.escalation_chain_edit(
                process=form.instance, actor=request.user,
                added=[{name: f.cleaned_data[name] for name in processes.LEVEL_EDITABLE}
                       for f in added],
                changed={f.instance.pk: {name: f.cleaned_data[name]
                                         for name in f.changed_data}
                         for f in changed},
                removed=[f.instance.pk for f in deleted])
        # What the admin's own change message (LogEntry) reads.
        formset.new_objects = [f.instance for f in added]
        formset.changed_objects = [(f.instance, f.changed_data) for f in changed]
        formset.deleted_objects = [f.instance for f in deleted]

    def delete_model(self, request, obj):
        processes.process_delete(process=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for process in queryset:
            self.delete_model(request, process)


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
