from __future__ import annotations

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs.api import job_read
from jobs.api import meetings as meeting_api
from jobs.api import search as search_api
from jobs.api import templates as templates_api
from jobs.api import views as job_api
from jobs.web import callbacks, usage_page
from jobs.web import meeting_pages as meeting_views
from jobs.web import search as search_pages
from jobs.web import views as job_views
from meeting_intel.ops import dashboard, health, scrape
from webhooks import api as webhook_api

api_v1 = [
    path("api/v1/jobs/", job_api.JobListCreate.as_view(), name="api-jobs"),
    path(
        "api/v1/jobs/<uuid:pk>/",
        job_read.fast_job_detail(job_api.JobDetail.as_view()),
        name="api-job",
    ),
    path("api/v1/jobs/<uuid:pk>/events/", job_api.JobEvents.as_view(), name="api-job-events"),
    path(
        "api/v1/jobs/<uuid:pk>/webhooks/",
        webhook_api.JobWebhooks.as_view(),
        name="api-job-webhooks",
    ),
    path(
        "api/v1/jobs/<uuid:pk>/webhooks/redeliver/",
        webhook_api.JobWebhooksRedeliver.as_view(),
        name="api-job-webhooks-redeliver",
    ),
    path("api/v1/jobs/<uuid:pk>/retry/", job_api.JobRetry.as_view(), name="api-job-retry"),
    path("api/v1/jobs/<uuid:pk>/cancel/", job_api.JobCancel.as_view(), name="api-job-cancel"),
    path(
        "api/v1/jobs/<uuid:pk>/reprocess/", job_api.JobReprocess.as_view(), name="api-job-reprocess"
    ),
    path("api/v1/search/", search_api.Search.as_view(), name="api-search"),
    path("api/v1/ask/", search_api.Ask.as_view(), name="api-ask"),
    path("api/v1/templates/", templates_api.TemplateListCreate.as_view(), name="api-templates"),
    path(
        "api/v1/templates/<uuid:pk>/", templates_api.TemplateDetail.as_view(), name="api-template"
    ),
    path("api/v1/meetings/<uuid:pk>/", meeting_api.MeetingDetail.as_view(), name="api-meeting"),
    path(
        "api/v1/meetings/<uuid:pk>/speakers/<str:label>/",
        meeting_api.SpeakerRename.as_view(),
        name="api-meeting-speaker",
    ),
    path(
        "api/v1/meetings/<uuid:pk>/transcript.<str:fmt>",
        meeting_api.TranscriptExport.as_view(),
        name="api-meeting-transcript",
    ),
    path(
        "api/v1/meetings/<uuid:pk>/report.<str:fmt>",
        meeting_api.ReportExport.as_view(),
        name="api-meeting-report",
    ),
    path(
        "api/v1/meetings/<uuid:pk>/action-items.ics",
        meeting_api.ActionItemsCalendar.as_view(),
        name="api-meeting-action-items",
    ),
]

urlpatterns = [
    *api_v1,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("jobs/<uuid:job_id>/", job_views.job_page, name="job-page"),
    path("jobs/<uuid:job_id>/state/", job_views.job_state, name="job-state"),
    path("meetings/<uuid:meeting_id>/", meeting_views.meeting_page, name="meeting-page"),
    path("meetings/<uuid:meeting_id>/audio", meeting_views.meeting_audio, name="meeting-audio"),
    path("meetings/<uuid:meeting_id>/search/", search_pages.meeting_search, name="meeting-search"),
    path(
        "meetings/<uuid:meeting_id>/transcript.<str:fmt>",
        meeting_views.transcript_download,
        name="meeting-transcript",
    ),
    path(
        "meetings/<uuid:meeting_id>/report.<str:fmt>",
        meeting_views.report_download,
        name="meeting-report",
    ),
    path(
        "meetings/<uuid:meeting_id>/action-items.ics",
        meeting_views.calendar_download,
        name="meeting-action-items",
    ),
    path("jobs/<uuid:job_id>/retry/", job_views.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/reprocess/", job_views.job_reprocess, name="job-reprocess"),
    path(
        "hooks/assemblyai/<uuid:job_id>/",
        callbacks.assemblyai_callback,
        name="assemblyai-callback",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", scrape.metrics_view, name="metrics"),
    # Before admin.site.urls, whose catch-all would take "dashboard" for an app label.
    path("admin/dashboard/", admin.site.admin_view(dashboard.dashboard), name="staff-dashboard"),
    path(
        "admin/dashboard/live/",
        admin.site.admin_view(dashboard.dashboard_live),
        name="staff-dashboard-live",
    ),
    path("admin/search/", admin.site.admin_view(search_pages.staff_search), name="staff-search"),
    path(
        "admin/usage/",
        admin.site.admin_view(usage_page.clients_page),
        name="staff-usage-clients",
    ),
    path(
        "admin/usage/<int:client_id>/",
        admin.site.admin_view(usage_page.usage_page),
        name="staff-usage",
    ),
    path("admin/", admin.site.urls),
]

# JSON error objects for unknown URLs and crashes under /api/; the usual pages elsewhere.
handler404 = "meeting_intel.http.errors.not_found"
handler500 = "meeting_intel.http.errors.server_error"
