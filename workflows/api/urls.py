from django.urls import path
from rest_framework.routers import SimpleRouter

from workflows.api import audit, sla
from workflows.api.availability import MyAvailabilityView, ReviewerAvailabilityView
from workflows.api.notifications import NotificationViewSet
from workflows.api.outbox import OutboxMessageViewSet
from workflows.api.preferences import MyPreferencesView
from workflows.api.queues import QueueViewSet
from workflows.api.raci import ConsultAnswerView, ProcessRaciView
from workflows.api.views import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="case")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("outbox", OutboxMessageViewSet, basename="outbox-message")
router.register("queues", QueueViewSet, basename="queue")

urlpatterns = [
    *router.urls,
    path("processes/<slug:slug>/raci/", ProcessRaciView.as_view(), name="process-raci"),
    path("cases/<int:case_id>/consults/<int:consult_id>/answer/", ConsultAnswerView.as_view(),
         name="consult-answer"),
    # SLA policies and calendars (workflows/api/sla.py).
    path("queues/<slug:slug>/sla-policies/", sla.SlaPolicyListView.as_view(),
         name="sla-policy-list"),
    path("queues/<slug:slug>/sla-policies/reapply/", sla.SlaPolicyReapplyView.as_view(),
         name="sla-policy-reapply"),
    path("queues/<slug:slug>/sla-policies/<int:version>/", sla.SlaPolicyDetailView.as_view(),
         name="sla-policy-detail"),
    path("calendars/", sla.CalendarListView.as_view(), name="calendar-list"),
    path("calendars/<int:pk>/", sla.CalendarDetailView.as_view(), name="calendar-detail"),
    path("calendars/<int:pk>/closures/", sla.CalendarClosureListView.as_view(),
         name="calendar-closure-list"),
    path("calendars/<int:pk>/closures/<int:closure_id>/",
         sla.CalendarClosureDetailView.as_view(), name="calendar-closure-detail"),
    # Availability for push assignment (workflows/api/availability.py).
    path("me/availability/", MyAvailabilityView.as_view(), name="my-availability"),
    path("me/preferences/", MyPreferencesView.as_view(), name="my-preferences"),
    path("reviewers/<str:username>/availability/", ReviewerAvailabilityView.as_view(),
         name="reviewer-availability"),
    # The audit trail and its verification (workflows/api/audit.py).
    path("audit/events/", audit.AuditEventsView.as_view(), name="audit-event-list"),
    path("audit/verifications/", audit.AuditVerificationsView.as_view(),
         name="audit-verification-list"),
    path("audit/verifications/<int:pk>/", audit.AuditVerificationView.as_view(),
         name="audit-verification-detail"),
]
