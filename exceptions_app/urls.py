from django.urls import path

from exceptions_app import (
    views_documents,
    views_evidence,
    views_labels,
    views_monitoring,
    views_onboard,
    views_stages,
    views_use_cases,
)

urlpatterns = [
    path("use-cases/", views_use_cases.use_case_list, name="use-cases"),
    # Onboarding (views_onboard.py); "new" before the slug it would otherwise be.
    path("use-cases/new/", views_onboard.use_case_create, name="use-case-create"),
    path("use-cases/<slug:slug>/edit/", views_onboard.use_case_edit, name="use-case-edit"),
    path("use-cases/<slug:slug>/policies/<int:number>/approve/",
         views_onboard.policy_approve_and_activate, name="policy-approve"),
    path("ai-systems/", views_onboard.ai_system_list, name="ai-systems"),
    path("ai-systems/new/", views_onboard.ai_system_create, name="ai-system-create"),
    path("ai-systems/<slug:slug>/", views_onboard.ai_system_detail, name="ai-system"),
    path("ai-systems/<slug:slug>/keys/", views_onboard.ai_system_issue_key,
         name="ai-system-issue-key"),
    path("ai-systems/<slug:slug>/keys/<str:prefix>/revoke/", views_onboard.ai_system_revoke_key,
         name="ai-system-revoke-key"),
    path("ai-systems/<slug:slug>/rotate-secret/", views_onboard.ai_system_rotate_secret,
         name="ai-system-rotate-secret"),
    path("use-cases/<slug:slug>/", views_use_cases.use_case_detail, name="use-case"),
    path("use-cases/<slug:slug>/monitoring/", views_monitoring.use_case_monitoring,
         name="use-case-monitoring"),
    path("use-cases/<slug:slug>/stage/", views_stages.use_case_stage, name="use-case-stage"),
    path("documents/<int:pk>/", views_documents.document_file, name="decision-document"),
    path("labels/", views_labels.label_export, name="labels"),
    path("audit/evidence/", views_evidence.evidence_export, name="audit-evidence"),
]
