"""REST API for meetings: `/api/v1/meetings/…`."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics

from jobs.auth import client_of

from .models import Meeting
from .serializers import MeetingSerializer, with_results


class MeetingDetail(generics.RetrieveAPIView):
    serializer_class = MeetingSerializer

    def get_queryset(self) -> QuerySet[Meeting]:
        return with_results(Meeting.objects.filter(job__client=client_of(self.request)))
