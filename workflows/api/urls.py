from rest_framework.routers import SimpleRouter

from workflows.api.notifications import NotificationViewSet
from workflows.api.outbox import OutboxMessageViewSet
from workflows.api.views import CaseViewSet

router = SimpleRouter()
router.register("cases", CaseViewSet, basename="case")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("outbox", OutboxMessageViewSet, basename="outbox-message")

urlpatterns = router.urls
