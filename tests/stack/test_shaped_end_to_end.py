"""A CMS shapes a meeting's analysis end to end, through the real web process and
worker: its template, participants and vocabulary reach the fake providers, and the
sections and names come back in the signed webhook and the API."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from tests.conftest import SAMPLE_AUDIO

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA=="
TEMPLATE = {
    "name": "Launch review",
    "instructions": "Focus on launch risks.",
    "sections": [{"key": "risks", "title": "Risks", "instructions": "Technical risks only."}],
    "is_default": False,
}


def submit(platform, api_key: str, receiver, **fields: str) -> dict:
    with open(SAMPLE_AUDIO, "rb") as audio:
        response = platform.api(api_key).post(
            f"{platform.url}/api/v1/jobs/",
            files={"audio": ("standup.wav", audio, "audio/wav")},
            data={"webhook_url": receiver.hook_url(), "webhook_secret": SECRET, **fields},
            timeout=30,
        )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_shaped_job_reaches_the_providers_and_comes_back_with_sections(
    platform, api_key, receiver, fake_aai, fake_openai
):
    api = platform.api(api_key)
    made = api.post(f"{platform.url}/api/v1/templates/", json=TEMPLATE, timeout=10)
    assert made.status_code == 201, made.text
    fake_openai.responses["section_risks"] = {
        "items": [{"text": "The payment provider may time out", "source_start_ms": 9000}]
    }
    chats_before = len(fake_openai.chat_requests)

    created = submit(
        platform,
        api_key,
        receiver,
        template="Launch review",
        participants=json.dumps([{"name": "Alice Smith", "role": "chair"}, {"name": "Bob Jones"}]),
        vocabulary=json.dumps(["Stripe", "staging"]),
    )
    assert created["template"] == "Launch review"

    [hook] = receiver.wait_for(1, timeout=90)
    event = Webhook(SECRET).verify(hook.body, hook.headers)
    assert event["data"]["job_id"] == created["id"] and event["data"]["status"] == "completed"
    meeting = event["data"]["meeting"]
    assert meeting["sections"] == {
        "risks": {
            "title": "Risks",
            "items": [{"text": "The payment provider may time out", "source_start_ms": 9000}],
        }
    }
    assert meeting["degraded"] == []

    submitted = fake_aai.submissions[-1]
    assert submitted["keyterms_prompt"] == ["Stripe", "staging", "Alice Smith", "Bob Jones"]
    assert submitted["speakers_expected"] == 2 and submitted["language_detection"] is True
    asked = {
        r["response_format"]["json_schema"]["name"]: r
        for r in fake_openai.chat_requests[chats_before:]
    }
    assert {"speaker_names", "summary", "action_items", "decisions", "section_risks"} <= set(asked)
    guidance = asked["section_risks"]["messages"][1]["content"]
    assert "Focus on launch risks." in guidance and "Technical risks only." in guidance
    names = asked["speaker_names"]["response_format"]["json_schema"]["schema"]
    assert names["$defs"]["SpeakerName"]["properties"]["name"]["anyOf"][0]["enum"] == [
        "Alice Smith",
        "Bob Jones",
    ]

    got = api.get(f"{platform.url}/api/v1/meetings/{meeting['id']}/", timeout=10).json()
    assert got["sections"] == meeting["sections"] and got["detected_language"] == "en"


def test_a_thin_webhook_leaves_the_meeting_out(platform, api_key, receiver):
    created = submit(platform, api_key, receiver, webhook_payload="thin")
    [hook] = receiver.wait_for(1, timeout=90)
    data = Webhook(SECRET).verify(hook.body, hook.headers)["data"]
    assert data["job_id"] == created["id"] and "meeting" not in data
    assert data["meeting_url"].startswith(platform.url) and data["results_url"]
    meeting = platform.api(api_key).get(data["meeting_url"], timeout=10)
    assert meeting.status_code == 200 and meeting.json()["id"] == data["meeting_id"]
