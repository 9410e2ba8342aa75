from django.urls import path

from workflows import views, views_dashboard, views_raci

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all,
         name="notifications-read-all"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
    path("outbox/", views.delivery_log, name="delivery-log"),
    # Who owns the work (workflows/views_raci.py).
    path("raci/", views_raci.raci_index, name="raci-index"),
    path("raci/<slug:slug>/", views_raci.raci_matrix, name="raci-matrix"),
    path("raci/<slug:slug>/<str:activity>/<str:role>/", views_raci.raci_cell,
         name="raci-cell"),
    path("availability/", views_raci.availability, name="availability"),
    path("consults/", views_raci.my_consults, name="my-consults"),
    path("consults/<int:pk>/answer/", views_raci.consult_answer, name="consult-answer-page"),
    # The managers' SLA dashboard and the operators' Prometheus scrape (views_dashboard.py).
    path("dashboard/", views_dashboard.sla_dashboard, name="sla-dashboard"),
    path("dashboard/cases/<int:pk>/reassign/", views_dashboard.reassign,
         name="sla-dashboard-reassign"),
    path("metrics", views_dashboard.prometheus_metrics, name="metrics"),
]
