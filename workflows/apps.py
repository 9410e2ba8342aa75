from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        # A case cannot resolve while a consult its escalation level requires is
        # unanswered; the check runs with the domain's resolution validators.
        from workflows import hooks
        from workflows.services import escalation

        hooks.register_resolution_validator(escalation.check_consults_answered)
