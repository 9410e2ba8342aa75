from django.urls import path

from exceptions_app import (
    views_backtests,
    views_documents,
    views_labels,
    views_monitoring,
    views_use_cases,
)

urlpatterns = [
    path("use-cases/", views_use_cases.use_case_list, name="use-cases"),
    path("use-cases/<slug:slug>/", views_use_cases.use_case_detail, name="use-case"),
    path("use-cases/<slug:slug>/monitoring/", views_monitoring.use_case_monitoring,
         name="use-case-monitoring"),
    path("use-cases/<slug:slug>/backtests/", views_backtests.use_case_backtests,
         name="policy-backtests"),
    path("use-cases/<slug:slug>/threshold/", views_backtests.use_case_thresholds,
         name="threshold-tuning"),
    path("backtests/<int:pk>/", views_backtests.backtest_detail, name="backtest"),
    path("use-cases/<slug:slug>/shadows/", views_backtests.start_shadow, name="shadow-start"),
    path("shadows/<int:pk>/", views_backtests.shadow_detail, name="shadow"),
    path("shadows/<int:pk>/stop/", views_backtests.stop_shadow, name="shadow-stop-page"),
    path("documents/<int:pk>/", views_documents.document_file, name="decision-document"),
    path("labels/", views_labels.label_export, name="labels"),
]
