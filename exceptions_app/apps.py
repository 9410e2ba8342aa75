from django.apps import AppConfig


class ExceptionsAppConfig(AppConfig):
    name = "exceptions_app"
    verbose_name = "AI exceptions"

    def ready(self):
        # The engine (workflows) hands resolved cases to the domain through these
        # hooks; it never imports this app.
        from exceptions_app.services import callbacks, resolutions
        from exceptions_app.verbs import DomainVerb
        from workflows import hooks, metrics, verbs
        from workflows.services import outbox

        hooks.register_resolution_validator(resolutions.validate_resolution)
        hooks.register_resolved_handler(resolutions.record_labelled_example)
        # The resolution goes back to the AI system as a signed webhook (outbox, I5).
        hooks.register_resolved_handler(callbacks.send_resolution)
        outbox.register_webhook_secret_provider(callbacks.webhook_secret)
        hooks.register_content_provider(resolutions.case_content)
        # The domain's audit verbs and their wording, beside the engine's.
        verbs.register(DomainVerb)
        # The intake rate operators scrape at /metrics (backstop_decisions_received_*).
        metrics.register_intake_source(model=self.get_model("Decision"), group_field="use_case",
                                       label_field="slug", time_field="received_at")
