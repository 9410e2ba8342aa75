from django.urls import path

from exceptions_app import (
    views_documents,
    views_labels,
    views_monitoring,
    views_stages,
    views_use_cases,
)

urlpatterns = [
    path("use-cases/", views_use_cases.use_case_list, name="use-cases"),
    path("use-cases/<slug:slug>/", views_use_cases.use_case_detail, name="use-case"),
    path("use-cases/<slug:slug>/monitoring/", views_monitoring.use_case_monitoring,
         name="use-case-monitoring"),
    path("use-cases/<slug:slug>/stage/", views_stages.use_case_stage, name="use-case-stage"),
    path("documents/<int:pk>/", views_documents.document_file, name="decision-document"),
    path("labels/", views_labels.label_export, name="labels"),
]
