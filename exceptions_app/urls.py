from django.contrib.auth import views as auth_views
from django.urls import path

from exceptions_app import views, views_use_cases

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("next/", views.next_case, name="next-case"),
    path("approvals/", views.approvals, name="approvals"),
    path("use-cases/", views_use_cases.use_case_list, name="use-cases"),
    path("use-cases/<slug:slug>/", views_use_cases.use_case_detail, name="use-case"),
    path("cases/<int:pk>/", views.case_detail, name="case"),
    path("cases/<int:pk>/claim/", views.claim, name="case-claim"),
    path("cases/<int:pk>/release/", views.release, name="case-release"),
    path("cases/<int:pk>/resolve/", views.resolve, name="case-resolve"),
    path("cases/<int:pk>/request-info/", views.request_info, name="case-request-info"),
    path("cases/<int:pk>/resume/", views.resume, name="case-resume"),
    path("cases/<int:pk>/escalate/", views.escalate, name="case-escalate"),
    path("cases/<int:pk>/approve/", views.approve, name="case-approve"),
    path("cases/<int:pk>/send-back/", views.send_back, name="case-send-back"),
    path("cases/<int:pk>/reassign/", views.reassign, name="case-reassign"),
    path("cases/<int:pk>/cancel/", views.cancel, name="case-cancel"),
]
