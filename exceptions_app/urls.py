from django.urls import path

from exceptions_app import (
    views_documents,
    views_labels,
    views_monitoring,
    views_policies,
    views_use_cases,
)

urlpatterns = [
    path("use-cases/", views_use_cases.use_case_list, name="use-cases"),
    path("use-cases/<slug:slug>/", views_use_cases.use_case_detail, name="use-case"),
    path("use-cases/<slug:slug>/monitoring/", views_monitoring.use_case_monitoring,
         name="use-case-monitoring"),
    path("use-cases/<slug:slug>/policies/", views_policies.policy_versions,
         name="policy-versions"),
    path("use-cases/<slug:slug>/policies/new/", views_policies.policy_new, name="policy-new"),
    path("use-cases/<slug:slug>/policies/check-rule/", views_policies.policy_check_rule,
         name="policy-check-rule"),
    path("use-cases/<slug:slug>/policies/<int:number>/", views_policies.policy_version,
         name="policy-version"),
    path("use-cases/<slug:slug>/policies/<int:number>/edit/", views_policies.policy_edit,
         name="policy-edit"),
    path("use-cases/<slug:slug>/policies/<int:number>/diff/", views_policies.policy_diff,
         name="policy-compare"),
    path("use-cases/<slug:slug>/policies/<int:number>/<slug:step>/",
         views_policies.policy_step, name="policy-step"),
    path("policies/approvals/", views_policies.policy_approvals, name="policy-approvals"),
    path("documents/<int:pk>/", views_documents.document_file, name="decision-document"),
    path("labels/", views_labels.label_export, name="labels"),
]
