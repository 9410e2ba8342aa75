"""A use case's reason codes have one shape, checked by one validator wherever they are
written: a plain list of strings once got through the admin and made every resolution
and case page of the use case answer 500."""

import pytest
from django.core.exceptions import ValidationError

from exceptions_app.models import validate_reason_codes
from tests.exceptions_app.factories import UseCaseFactory


@pytest.mark.parametrize("codes", [
    ["po-mismatch", "duplicate"],
    [{"label": "no code"}],
    [{"code": ""}],
    [{"code": "a", "label": 3}],
    [{"code": "a"}, {"code": "a"}],
    {"code": "a"},
])
def test_reason_codes_of_the_wrong_shape_are_refused_naming_the_expected_shape(codes):
    with pytest.raises(ValidationError) as refused:
        validate_reason_codes(codes)

    assert "reason_codes" in str(refused.value)


def test_reason_codes_as_code_and_label_objects_pass():
    validate_reason_codes([{"code": "po-mismatch", "label": "Amount does not match the PO"},
                           {"code": "duplicate"}])
    validate_reason_codes([])


@pytest.mark.django_db
def test_a_use_case_with_plain_string_reason_codes_fails_full_clean_on_that_field():
    use_case = UseCaseFactory.build(reason_codes=["po-mismatch"])

    with pytest.raises(ValidationError) as refused:
        use_case.full_clean(exclude=["review_queue", "qa_queue", "process"])

    assert list(refused.value.message_dict) == ["reason_codes"]
    assert "list of objects" in refused.value.message_dict["reason_codes"][0]
