from django.apps import AppConfig
from django.conf import settings


class ExceptionsAppConfig(AppConfig):
    name = "exceptions_app"
    verbose_name = "AI exceptions"

    def ready(self):
        # The engine (workflows) hands resolved cases to the domain through these
        # hooks; it never imports this app.
        from exceptions_app import presenters
        from exceptions_app.activities import DomainActivity
        from exceptions_app.services import callbacks, drift, intake, resolutions, resolved
        from exceptions_app.verbs import DomainVerb, StageVerb
        from workflows import hooks, verbs

        hooks.register_resolution_validator(resolutions.validate_resolution)
        # A final resolution becomes a labelled example, goes back to the AI system (its
        # feed, a signed webhook: outbox, I5) and adds to the quality rollups, in the
        # same transaction.
        hooks.register_resolved_handler(resolved.case_resolved)
        hooks.register_webhook_secret_provider(callbacks.webhook_secrets)
        hooks.register_content_provider(resolutions.case_content)
        hooks.register_content_reads(resolutions.CONTENT_READS)
        hooks.register_search_values(intake.input_search_values)
        # The case page's decision panels, use case link and typed output fields.
        hooks.register_case_presenter(presenters.presenter)
        hooks.register_nav_link(hooks.NavLink(key="use-cases", label="Use cases",
                                              url_name="use-cases"))
        # A use case's RACI rows beyond the engine's: policy, stage and model changes.
        hooks.register_activities(DomainActivity)
        # What a 413 on the intake endpoints advises.
        hooks.register_payload_advice(hooks.PayloadAdvice(
            path_prefix="/api/v1/decisions/",
            advice=f"a batch takes up to {settings.BATCH_MAX_DECISIONS} decisions"))
        # The domain's audit verbs and their wording, beside the engine's.
        verbs.register(DomainVerb)
        # The audit log's use case filter.
        from exceptions_app.audit_filters import USE_CASE_FILTER

        hooks.register_audit_filter(USE_CASE_FILTER)
        hooks.register_audit_page(hooks.NavLink(
            key="evidence", label="Export the evidence of a period", url_name="audit-evidence"))
        verbs.register(StageVerb)
        # The intake rate operators scrape at /metrics (backstop_decisions_received_*).
        # The names are the ones operators already scrape: they must not change.
        hooks.register_intake_source(hooks.IntakeSource(
            model=self.get_model("Decision"), group_field="use_case", label_field="slug",
            time_field="received_at", name="backstop_decisions_received", label="use_case",
            documentation="Decisions received and stored since the start.",
            recent_documentation="Decisions received in the last 5 minutes, per use case."))
        # Drift as operators scrape it (exceptions_app/services/drift.py).
        hooks.register_gauge_source(hooks.GaugeSource(
            name="backstop_drift_psi", labels=("use_case", "feature"), read=drift.psi_by_feature,
            documentation="Population stability index of each feature's recent decisions "
                          "against the use case's reference, at the last check."))
        hooks.register_gauge_source(hooks.GaugeSource(
            name="backstop_drift_alerts_open", labels=("use_case", "level"),
            read=drift.open_alerts, documentation="Open drift alerts per use case and level."))
        # Open drift alerts on the managers' dashboard, linking to the monitoring page.
        hooks.register_alert_source(drift.dashboard_alerts)
