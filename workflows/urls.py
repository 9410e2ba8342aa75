from django.contrib.auth import views as auth_views
from django.urls import path

from workflows import (
    health,
    views,
    views_audit,
    views_case_list,
    views_cases,
    views_dashboard,
    views_queue_settings,
    views_queues,
    views_raci,
)

urlpatterns = [
    # Probes for load balancers and orchestrators: no sign-in, plain http allowed.
    path("healthz", health.liveness, name="healthz"),
    path("readyz", health.readiness, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The queue home, the case page and its actions, approvals (workflows/views_cases.py).
    path("", views_cases.home, name="home"),
    path("next/", views_cases.next_case, name="next-case"),
    path("preferences/", views_cases.preferences, name="preferences"),
    path("approvals/", views_cases.approvals, name="approvals"),
    # Finding cases and acting on many (workflows/views_case_list.py).
    path("cases/", views_case_list.case_list, name="case-index"),
    path("cases/bulk/", views_case_list.bulk_action, name="case-bulk"),
    path("cases/views/", views_case_list.save_view, name="case-view-save"),
    path("cases/views/<int:pk>/delete/", views_case_list.delete_view, name="case-view-delete"),
    path("cases/<int:pk>/", views_cases.case_detail, name="case"),
    path("cases/<int:pk>/claim/", views_cases.claim, name="case-claim"),
    path("cases/<int:pk>/release/", views_cases.release, name="case-release"),
    path("cases/<int:pk>/resolve/", views_cases.resolve, name="case-resolve"),
    path("cases/<int:pk>/request-info/", views_cases.request_info, name="case-request-info"),
    path("cases/<int:pk>/resume/", views_cases.resume, name="case-resume"),
    path("cases/<int:pk>/escalate/", views_cases.escalate, name="case-escalate"),
    path("cases/<int:pk>/approve/", views_cases.approve, name="case-approve"),
    path("cases/<int:pk>/send-back/", views_cases.send_back, name="case-send-back"),
    path("cases/<int:pk>/reassign/", views_cases.reassign, name="case-reassign"),
    path("cases/<int:pk>/cancel/", views_cases.cancel, name="case-cancel"),
    path("cases/<int:pk>/comments/", views_cases.comment, name="case-comment"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all,
         name="notifications-read-all"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
    path("outbox/", views.delivery_log, name="delivery-log"),
    path("outbox/<uuid:message_id>/redeliver/", views.redeliver_message,
         name="redeliver-message"),
    path("profile/", views.profile, name="profile"),
    # Who owns the work (workflows/views_raci.py).
    path("raci/", views_raci.raci_index, name="raci-index"),
    path("raci/<slug:slug>/", views_raci.raci_matrix, name="raci-matrix"),
    path("raci/<slug:slug>/<str:activity>/<str:role>/", views_raci.raci_cell,
         name="raci-cell"),
    path("availability/", views_raci.availability, name="availability"),
    # Queue membership (managers; workflows/views_queues.py).
    path("queues/", views_queues.queue_index, name="queue-index"),
    path("queues/new/", views_queue_settings.queue_create, name="queue-create"),
    path("queues/<slug:slug>/members/", views_queues.queue_members, name="queue-members"),
    path("queues/<slug:slug>/settings/", views_queue_settings.queue_settings,
         name="queue-settings"),
    path("consults/", views_raci.my_consults, name="my-consults"),
    path("consults/<int:pk>/answer/", views_raci.consult_answer, name="consult-answer-page"),
    # The managers' SLA dashboard and the operators' Prometheus scrape (views_dashboard.py).
    path("dashboard/", views_dashboard.sla_dashboard, name="sla-dashboard"),
    path("dashboard/cases/<int:pk>/reassign/", views_dashboard.reassign,
         name="sla-dashboard-reassign"),
    path("metrics", views_dashboard.prometheus_metrics, name="metrics"),
    # The audit log and a case's trail, for managers and auditors (views_audit.py).
    path("audit/", views_audit.audit_log_page, name="audit-log"),
    path("audit/cases/<int:pk>/", views_audit.case_trail, name="audit-case-trail"),
    path("audit/verifications/", views_audit.verifications_page, name="audit-verifications"),
    path("audit/verifications/<int:pk>/", views_audit.verification_page,
         name="audit-verification"),
]
