from django.urls import path

from exceptions_app.api import views

urlpatterns = [
    path("decisions/", views.DecisionCreateView.as_view(), name="decision-create"),
    path("decisions/batch/", views.DecisionBatchView.as_view(), name="decision-batch"),
    path("decisions/<int:pk>/", views.DecisionDetailView.as_view(), name="decision-detail"),
]
