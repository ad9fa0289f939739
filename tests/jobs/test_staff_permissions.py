"""Every staff action checks its own permission: a view-only staff account posting
each admin action (or a staff page's button) changes nothing and is told which
permission it lacks; granting that one permission allows exactly that action."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from jobs.models import ApiClient, Job
from tests.support.api_factories import make_job, make_meeting, new_client
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSecret
from webhooks.outbox import record_job_event

pytestmark = pytest.mark.django_db

VIEW = [
    "jobs.view_job",
    "jobs.view_apiclient",
    "webhooks.view_webhookdelivery",
    "webhooks.view_webhookendpoint",
    "webhooks.view_webhooksecret",
]


def grant(user: Any, *perms: str) -> None:
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    grant(user, *VIEW)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def world(settings) -> dict[str, Any]:
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    api_client, _ = new_client()
    failed = make_job(api_client, status=Job.Status.FAILED, error_code="provider_timeout")
    running = make_job(api_client, status=Job.Status.PROCESSING, stage=Job.Stage.ANALYZING)
    done = make_job(
        api_client,
        status=Job.Status.COMPLETED,
        stage=Job.Stage.DONE,
        webhook_url="https://cms.example/hook",
        audio_url="https://cms.example/a.wav",
        transcript_saved_at=timezone.now(),
    )
    make_meeting(done, [("A", 0, 1000, "Hello.")])
    with transaction.atomic():
        delivery = record_job_event(done, "job.completed")
    WebhookDelivery.objects.filter(id=delivery.id).update(
        state=WebhookDelivery.State.EXHAUSTED, attempt_count=8
    )
    endpoint = WebhookEndpoint.objects.create(
        url="https://gone.example/h", gone_at=timezone.now(), gone_reason="410"
    )
    secret = WebhookSecret.objects.create(client=api_client)
    return {
        "jobs/job": [failed, running, done],
        "jobs/apiclient": [api_client],
        "webhooks/webhookdelivery": [delivery],
        "webhooks/webhookendpoint": [endpoint],
        "webhooks/webhooksecret": [secret],
    }


def snapshot() -> list[Any]:
    return [
        sorted(Job.objects.values_list("id", "status", "attempts", "viewer_token_version")),
        sorted(ApiClient.objects.values_list("id", "revoked_at")),
        sorted(WebhookDelivery.objects.values_list("id", "state", "attempt_count")),
        sorted(WebhookEndpoint.objects.values_list("id", "gone_at")),
        sorted(WebhookSecret.objects.values_list("id", "expires_at")),
    ]


ACTIONS = [
    ("jobs/job", "retry_jobs", "Can retry jobs"),
    ("jobs/job", "cancel_jobs", "Can cancel jobs"),
    ("jobs/job", "reprocess_from_analysis", "Can reprocess jobs"),
    ("jobs/job", "reprocess_from_transcription", "Can reprocess jobs"),
    ("jobs/job", "revoke_viewer_links", "Can revoke viewer links"),
    ("jobs/job", "delete_selected", "Can delete job"),
    ("jobs/apiclient", "revoke", "Can revoke API keys"),
    ("jobs/apiclient", "delete_selected", "Can delete api client"),
    ("webhooks/webhookdelivery", "redeliver_selected", "Can redeliver webhooks"),
    ("webhooks/webhookendpoint", "reenable", "Can change webhook endpoint"),
    ("webhooks/webhooksecret", "expire_now", "Can expire webhook signing secrets"),
]


def post_action(client, model: str, action: str, objects: list[Any]):
    return client.post(
        f"/admin/{model}/",
        {"action": action, "_selected_action": [str(o.pk) for o in objects], "index": 0},
        follow=True,
    )


@pytest.mark.parametrize(("model", "action", "label"), ACTIONS, ids=[a[1] for a in ACTIONS])
def test_a_view_only_account_posting_an_action_changes_nothing_and_sees_why(
    viewer, world, model, action, label
):
    before = snapshot()
    response = post_action(viewer, model, action, world[model])
    assert response.status_code == 200
    assert snapshot() == before
    shown = [str(m) for m in response.context["messages"]]
    assert any(label in m and "Nothing was changed" in m for m in shown), shown


def test_a_view_only_account_is_offered_no_action(viewer, world):
    for model in world:
        page = viewer.get(f"/admin/{model}/")
        assert page.status_code == 200
        form = page.context["action_form"]
        offered = [name for name, _ in form.fields["action"].choices] if form else []
        assert offered in ([], [""]), (model, offered)


def test_staff_page_buttons_check_their_permission(viewer, world):
    failed, _, done = world["jobs/job"]
    before = snapshot()
    for path, data, label in (
        (f"/jobs/{failed.id}/retry/", {}, "Can retry jobs"),
        (f"/jobs/{done.id}/reprocess/", {"from": "analysis"}, "Can reprocess jobs"),
    ):
        page = viewer.post(path, data, follow=True)
        shown = [str(m) for m in page.context["messages"]]
        assert any(label in m and "Nothing was changed" in m for m in shown), shown
    delivery = world["webhooks/webhookdelivery"][0]
    page = viewer.post(f"/admin/webhooks/webhookdelivery/{delivery.id}/redeliver/", follow=True)
    assert any("Can redeliver webhooks" in str(m) for m in page.context["messages"])
    assert viewer.get("/admin/webhooks/webhookdelivery/send-test/").status_code == 403
    assert snapshot() == before
    assert "job-retry" not in viewer.get(f"/jobs/{failed.id}/").content.decode()


def test_one_granted_permission_allows_that_action_only(viewer, world):
    failed, running, _ = world["jobs/job"]
    grant(viewer.user, "jobs.cancel_job")
    post_action(viewer, "jobs/job", "cancel_jobs", [running])
    assert Job.objects.get(id=running.id).status == Job.Status.CANCELLED
    post_action(viewer, "jobs/job", "retry_jobs", [failed])
    assert Job.objects.get(id=failed.id).status == Job.Status.FAILED
    grant(viewer.user, "jobs.retry_job")
    viewer.post(f"/jobs/{failed.id}/retry/")
    assert Job.objects.get(id=failed.id).status == Job.Status.PENDING
