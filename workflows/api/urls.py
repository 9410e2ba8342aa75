from django.urls import path
from rest_framework.routers import SimpleRouter

from workflows.api.notifications import NotificationViewSet
from workflows.api.outbox import OutboxMessageViewSet
from workflows.api.raci import ConsultAnswerView, ProcessRaciView
from workflows.api.views import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="case")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("outbox", OutboxMessageViewSet, basename="outbox-message")

urlpatterns = [
    *router.urls,
    path("processes/<slug:slug>/raci/", ProcessRaciView.as_view(), name="process-raci"),
    path("cases/<int:case_id>/consults/<int:consult_id>/answer/", ConsultAnswerView.as_view(),
         name="consult-answer"),
]
