"""Staff view of webhooks: deliveries with their attempts, redelivery (one or
many), endpoints marked gone, client signing secrets, and a test-event page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from jobs.admin import JobAdmin
from jobs.models import ApiClient
from meeting_intel.lib.admin_permissions import (
    ExplainedActionsMixin,
    permission_label,
    refusal,
)
from webhooks.actions import expire_secret, redeliver, rotate_secret, send_test_event
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret
from webhooks.signing import client_secrets


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "created_at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["event_type", "url", "state", "attempt_count", "last_status_code", "next_attempt_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# A job's admin page lists its deliveries; the inline is added from here
# because jobs never imports webhooks.
JobAdmin.inlines = [*JobAdmin.inlines, WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ExplainedActionsMixin, admin.ModelAdmin):
    list_display = [
        "webhook_id",
        "event_type",
        "job_link",
        "url",
        "state",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["state", "event_type", "url"]
    search_fields = ["webhook_id", "url", "job__id", "job__external_id"]
    list_select_related = ["job"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "webhook_id",
        "job",
        "event_type",
        "url",
        "body",
        "state",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver_selected"]
    permission_codenames = {"redeliver": "redeliver_webhookdelivery"}
    change_form_template = "admin/webhooks/webhookdelivery/change_form.html"
    change_list_template = "admin/webhooks/webhookdelivery/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="job", ordering="job")
    def job_link(self, obj: WebhookDelivery) -> str:
        url = reverse("admin:jobs_job_change", args=[obj.job_id])
        return format_html('<a href="{}">{}</a>', url, obj.job)

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "redeliver")

    @admin.action(description="Redeliver selected webhooks", permissions=["redeliver"])
    def redeliver_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        deliveries = list(queryset)
        for delivery in deliveries:
            redeliver(delivery)
        self.message_user(request, f"Queued {len(deliveries)} redelivery(ies).", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:object_id>/redeliver/",
                self.admin_site.admin_view(require_POST(self.redeliver_view)),
                name="webhooks_webhookdelivery_redeliver",
            ),
            path(
                "send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="webhooks_webhookdelivery_send_test",
            ),
            *super().get_urls(),
        ]

    def redeliver_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        delivery = get_object_or_404(WebhookDelivery, id=object_id)
        change = reverse("admin:webhooks_webhookdelivery_change", args=[object_id])
        if not self.has_redeliver_permission(request):
            self.message_user(request, self._refusal("redeliver webhooks"), messages.ERROR)
            return HttpResponseRedirect(change)
        redeliver(delivery)
        self.message_user(
            request, f"Queued a redelivery of {delivery.webhook_id}.", messages.SUCCESS
        )
        return HttpResponseRedirect(change)

    def _refusal(self, what: str) -> str:
        return refusal(permission_label("webhooks", "redeliver_webhookdelivery"), what)

    def send_test_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_redeliver_permission(request):
            raise PermissionDenied(self._refusal("send test webhook events"))
        form = SendTestEventForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            client = form.cleaned_data["client"]
            given = [form.cleaned_data["secret"], *client_secrets(client)]
            secrets = list(dict.fromkeys(s for s in given if s))
            webhook_id, outcome = send_test_event(form.cleaned_data["url"], secrets)
            result = {"webhook_id": webhook_id, "outcome": outcome, "signatures": len(secrets)}
            level = messages.SUCCESS if outcome.succeeded else messages.ERROR
            summary = outcome.error or f"HTTP {outcome.status_code}"
            self.message_user(request, f"Test event {webhook_id}: {summary}.", level)
        context = {
            **self.admin_site.each_context(request),
            "title": "Send a test webhook event",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/webhooks/send_test_event.html", context)


class SendTestEventForm(forms.Form):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="Endpoint URL")
    client = forms.ModelChoiceField(
        ApiClient.objects.all(),
        required=False,
        help_text="Sign with this client's secrets in effect.",
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="A job-style webhook secret to sign with (not stored).",
        widget=forms.PasswordInput,
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ExplainedActionsMixin, admin.ModelAdmin):
    list_display = ["url", "gone_at", "gone_reason", "created_at"]
    list_filter = [("gone_at", admin.EmptyFieldListFilter)]
    search_fields = ["url"]
    readonly_fields = ["gone_at", "gone_reason", "created_at"]
    actions = ["reenable"]

    @admin.action(description="Re-enable (clear the 410 gone mark)", permissions=["change"])
    def reenable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        count = queryset.exclude(gone_at=None).update(gone_at=None, gone_reason="")
        self.message_user(
            request,
            f"Re-enabled {count} endpoint(s). Redeliver their gone deliveries to resend them.",
            messages.SUCCESS,
        )


@admin.register(WebhookSecret)
class WebhookSecretAdmin(ExplainedActionsMixin, admin.ModelAdmin):
    """Adding a secret for a client rotates: its current secret gets an expiry."""

    list_display = ["client", "masked", "created_at", "expires_at", "in_effect"]
    list_filter = ["client"]
    fields = ["client", "created_at", "expires_at"]
    readonly_fields = ["created_at", "expires_at"]
    actions = ["expire_now"]
    permission_codenames = {"expire": "expire_webhooksecret"}

    def has_expire_permission(self, request: HttpRequest) -> bool:
        return self.has_model_permission(request, "expire")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["client", *self.readonly_fields] if obj else self.readonly_fields

    @admin.display(description="secret")
    def masked(self, obj: WebhookSecret) -> str:
        return f"{obj.secret[:10]}…"

    @admin.display(boolean=True, description="signing")
    def in_effect(self, obj: WebhookSecret) -> bool:
        return obj.expires_at is None or obj.expires_at > timezone.now()

    def save_model(self, request: HttpRequest, obj: WebhookSecret, form: Any, change: bool) -> None:
        if change:
            return
        fresh = rotate_secret(obj.client)
        obj.pk, obj.secret, obj.created_at = fresh.pk, fresh.secret, fresh.created_at
        self.message_user(
            request,
            f"New webhook signing secret for {obj.client} (shown once, give it to the client): "
            f"{fresh.secret}. Its previous secret keeps signing until its expiry.",
            messages.WARNING,
        )

    @admin.action(description="Stop signing with the selected secrets now", permissions=["expire"])
    def expire_now(self, request: HttpRequest, queryset: QuerySet[WebhookSecret]) -> None:
        secrets = list(queryset)
        for secret in secrets:
            expire_secret(secret)
        self.message_user(request, f"Expired {len(secrets)} secret(s).", messages.SUCCESS)
