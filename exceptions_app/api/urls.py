from django.urls import path

from exceptions_app.api import documents, labels, policies, quality, views, withdrawal

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
    path("use-cases/<slug:slug>/policies/", policies.PolicyListView.as_view(),
         name="policy-list"),
    path("use-cases/<slug:slug>/policies/check-rule/", policies.RuleCheckView.as_view(),
         name="policy-rule-check"),
    path("use-cases/<slug:slug>/policies/<int:number>/", policies.PolicyDetailView.as_view(),
         name="policy-detail"),
    path("use-cases/<slug:slug>/policies/<int:number>/diff/", policies.PolicyDiffView.as_view(),
         name="policy-diff"),
    *(path(f"use-cases/<slug:slug>/policies/<int:number>/{step.replace('_', '-')}/",
           policies.step_view(step, summary, with_reason=with_reason),
           name=f"policy-{step.replace('_', '-')}")
      for step, summary, with_reason in policies.STEPS),
]
