from django.urls import path

from exceptions_app.api import documents, labels, quality, stages, views, withdrawal

urlpatterns = [
    path("decisions/", views.DecisionsView.as_view(), name="decision-create"),
    path("decisions/batch/", views.DecisionBatchView.as_view(), name="decision-batch"),
    path("decisions/<int:pk>/", views.DecisionDetailView.as_view(), name="decision-detail"),
    path("decisions/<int:pk>/withdraw/", withdrawal.DecisionWithdrawView.as_view(),
         name="decision-withdraw"),
    path("decisions/<int:pk>/documents/", documents.DecisionDocumentsView.as_view(),
         name="decision-documents"),
    path("labels/", labels.LabelListView.as_view(), name="label-list"),
    path("labels/export/<str:file_format>/", labels.LabelExportView.as_view(),
         name="label-export"),
    path("resolutions/", views.ResolutionFeedView.as_view(), name="resolution-feed"),
    path("use-cases/<slug:slug>/quality/", quality.UseCaseQualityView.as_view(),
         name="use-case-quality"),
    path("use-cases/<slug:slug>/stage/", stages.UseCaseStageView.as_view(),
         name="use-case-stage-api"),
    path("use-cases/<slug:slug>/stage/advance/", stages.UseCaseAdvanceView.as_view(),
         name="use-case-stage-advance"),
    path("use-cases/<slug:slug>/stage/lower/", stages.UseCaseLowerView.as_view(),
         name="use-case-stage-lower"),
    path("use-cases/<slug:slug>/kill-switch/", stages.UseCaseKillSwitchView.as_view(),
         name="use-case-kill-switch"),
    path("use-cases/<slug:slug>/guardrails/", stages.UseCaseGuardrailsView.as_view(),
         name="use-case-guardrails"),
]
