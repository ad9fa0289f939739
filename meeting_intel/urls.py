from __future__ import annotations

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs import api as job_api
from jobs import views as job_views
from meetings import api as meeting_api
from meetings import views as meeting_views

api_v1 = [
    path("api/v1/jobs/", job_api.JobListCreate.as_view(), name="api-jobs"),
    path("api/v1/jobs/<uuid:pk>/", job_api.JobDetail.as_view(), name="api-job"),
    path("api/v1/jobs/<uuid:pk>/events/", job_api.JobEvents.as_view(), name="api-job-events"),
    path("api/v1/meetings/<uuid:pk>/", meeting_api.MeetingDetail.as_view(), name="api-meeting"),
]

urlpatterns = [
    *api_v1,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("jobs/<uuid:job_id>/", job_views.job_page, name="job-page"),
    path("jobs/<uuid:job_id>/state/", job_views.job_state, name="job-state"),
    path("meetings/<uuid:meeting_id>/", meeting_views.meeting_page, name="meeting-page"),
    path(
        "hooks/assemblyai/<uuid:job_id>/",
        job_views.assemblyai_callback,
        name="assemblyai-callback",
    ),
    path("healthz", job_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
