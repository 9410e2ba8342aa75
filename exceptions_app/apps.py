from django.apps import AppConfig


class ExceptionsAppConfig(AppConfig):
    name = "exceptions_app"
    verbose_name = "AI exceptions"

    def ready(self):
        # The engine (workflows) hands resolved cases to the domain through these
        # hooks; it never imports this app.
        from exceptions_app.services import resolutions
        from workflows import hooks

        hooks.register_resolution_validator(resolutions.validate_resolution)
        hooks.register_resolved_handler(resolutions.record_labelled_example)
        hooks.register_content_provider(resolutions.case_content)
