"""The RACI matrix of a process, and answers to consults, for people.

- ``GET /api/v1/processes/{slug}/raci/``: the matrix, for managers, the people who
  work the process's queues and the people it names (everyone else: 404, I8);
- ``PUT /api/v1/processes/{slug}/raci/``: managers replace the cells the body names
  (others: 403); every changed cell is one audit event with before/after;
- ``POST /api/v1/cases/{id}/consults/{consult_id}/answer/``: the person asked answers
  (anyone else: 404).
"""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from workflows import selectors
from workflows.api.queues import PeopleAPIView
from workflows.api.serializers import ConsultSerializer, ProblemSerializer
from workflows.models import (
    ConsultRequest,
    Process,
    RaciRole,
    activity_values,
)
from workflows.services import consults, raci


class CellSerializer(serializers.Serializer):
    users = serializers.ListField(child=serializers.CharField(), default=list,
                                  help_text="Usernames.")
    groups = serializers.ListField(child=serializers.CharField(), default=list,
                                   help_text="Group names.")


class RoleRowSerializer(serializers.Serializer):
    R = CellSerializer(required=False, help_text="Responsible")
    A = CellSerializer(required=False, help_text="Accountable")
    C = CellSerializer(required=False, help_text="Consulted")
    I = CellSerializer(required=False, help_text="Informed")  # noqa: E741 (the RACI letter)


class MatrixSerializer(serializers.Serializer):
    """``cells``: activity -> role (R, A, C, I) -> ``{"users": [...], "groups": [...]}``."""

    process = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    cells = serializers.DictField(child=RoleRowSerializer())

    def validate_cells(self, cells):
        unknown = sorted(set(cells) - set(activity_values()))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown activities {', '.join(unknown)}; use {', '.join(activity_values())}.")
        return cells


class AnswerSerializer(serializers.Serializer):
    answer = serializers.CharField(allow_blank=True, trim_whitespace=True)


def _matrix_body(process: Process) -> dict:
    return {"process": process.slug, "name": process.name, "cells": raci.cells(process=process)}


class ProcessRaciView(PeopleAPIView):
    def _process(self, request, slug) -> Process:
        return selectors.visible_processes(user=request.user).get(slug=slug)

    @extend_schema(summary="Who is Responsible, Accountable, Consulted and Informed, per "
                           "activity of the process.",
                   responses={200: MatrixSerializer,
                              404: OpenApiResponse(description="No such process of yours.")})
    def get(self, request, slug):
        return Response(_matrix_body(self._process(request, slug)))

    @extend_schema(
        summary="Managers: replace the cells named in the body (send empty lists to clear "
                "one); cells not named stay as they are. Each changed cell is audited.",
        request=MatrixSerializer,
        responses={200: MatrixSerializer, 400: OpenApiResponse(description="Field errors; "
                   "nothing changed."),
                   403: OpenApiResponse(ProblemSerializer, "Only managers edit the matrix."),
                   404: OpenApiResponse(description="No such process of yours.")})
    def put(self, request, slug):
        process = self._process(request, slug)
        if not raci.may_edit(request.user):
            raise PermissionDenied("Only managers may change who owns a process's decisions.")
        serializer = MatrixSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = []
        for activity, row in serializer.validated_data["cells"].items():
            for role in RaciRole.values:
                if role in row:
                    users, groups = raci.resolve_names(usernames=row[role]["users"],
                                                       group_names=row[role]["groups"])
                    changes.append((activity, role, users, groups))
        with transaction.atomic():  # all cells or none
            for activity, role, users, groups in changes:
                raci.set_assignments(process=process, activity=activity, role=role,
                                     users=users, groups=groups, actor=request.user)
        return Response(_matrix_body(process))


class ConsultAnswerView(PeopleAPIView):
    @extend_schema(summary="Answer a consult you were asked on this case (once).",
                   request=AnswerSerializer,
                   responses={200: ConsultSerializer,
                              400: OpenApiResponse(description="The answer is empty."),
                              404: OpenApiResponse(description="No such consult for you."),
                              409: OpenApiResponse(ProblemSerializer, "Already answered, or "
                                                   "the case is closed.")})
    def post(self, request, case_id, consult_id):
        # I8: only the person asked finds the consult, and only under its own case.
        ConsultRequest.objects.get(pk=consult_id, case=case_id, consultee=request.user.pk)
        data = AnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consult = consults.answer_consult(consult_id=consult_id, user=request.user,
                                            answer=data.validated_data["answer"])
        return Response(ConsultSerializer(consult).data, status=status.HTTP_200_OK)
