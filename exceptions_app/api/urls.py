from django.urls import path

from exceptions_app.api import backtests, documents, labels, quality, views, withdrawal

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
    path("use-cases/<slug:slug>/backtests/", backtests.UseCaseBacktestsView.as_view(),
         name="use-case-backtests"),
    path("use-cases/<slug:slug>/thresholds/", backtests.UseCaseThresholdsView.as_view(),
         name="use-case-thresholds"),
    path("backtests/<int:pk>/", backtests.BacktestDetailView.as_view(), name="backtest-detail"),
    path("use-cases/<slug:slug>/shadows/", backtests.UseCaseShadowsView.as_view(),
         name="use-case-shadows"),
    path("shadows/<int:pk>/", backtests.ShadowDetailView.as_view(), name="shadow-detail"),
    path("shadows/<int:pk>/stop/", backtests.ShadowStopView.as_view(), name="shadow-stop"),
]
