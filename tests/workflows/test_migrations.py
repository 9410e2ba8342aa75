import pytest
from django.apps import apps
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from workflows.apps import refuse_database_from_before_the_squash


@pytest.mark.django_db
def test_a_database_from_before_the_squash_is_refused_with_what_to_do():
    MigrationRecorder(connection).record_applied("workflows", "0008_raci_holders_protected")

    with pytest.raises(CommandError, match=r"workflows\.0008_raci_holders_protected.*delete var/"):
        refuse_database_from_before_the_squash(apps.get_app_config("workflows"),
                                               using=connection.alias)


@pytest.mark.django_db
def test_a_database_migrated_by_this_code_is_accepted():
    refuse_database_from_before_the_squash(apps.get_app_config("workflows"),
                                           using=connection.alias)
