"""The live job page and the results page in headless Chromium, against a live
web process with a real worker and the fake providers. Each test leaves a
screenshot in artifacts/screenshots/<test>.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db import connection
from playwright.sync_api import Page, expect, sync_playwright

from jobs.actions import submit_job
from jobs.models import Job
from jobs.pipeline.queue import enqueue_next
from jobs.tokens import make_viewer_token
from meetings.models import Meeting
from tests.conftest import SAMPLE_AUDIO, wait_for_job
from tests.fakes.script import CANNED
from tests.support.pages import launch_chromium, require_chromium, screenshot_path

require_chromium()

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<script>window.__xss=1</script>"

# Records each distinct "status/current stage" the page shows, from the DOM itself.
RECORD_STATES = """() => {
  window.__sameDocument = true;
  window.__seen = [];
  const record = () => {
    const status = document.getElementById("job-status").dataset.status;
    const current = document.querySelector("#job-stages li.current");
    const entry = status + "/" + (current ? current.dataset.stage : "-");
    if (window.__seen[window.__seen.length - 1] !== entry) window.__seen.push(entry);
  };
  record();
  new MutationObserver(record).observe(document.getElementById("job"),
    { subtree: true, attributes: true, childList: true, characterData: true });
}"""


@pytest.fixture(scope="module")
def chromium(platform: Any) -> Iterator[Any]:
    # Playwright's sync API keeps an event loop on this thread, which makes
    # Django refuse ORM calls; they are safe here (the loop only runs while
    # Playwright is called), so allow them while the browser is open. The
    # platform is started first, so its processes never inherit the flag.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.screenshot(path=screenshot_path(request.node.name), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def queued_job(title: str) -> Job:
    """A job saved and waiting, with its first step not yet sent to the worker.

    Saved from a plain thread: its broadcast uses async_to_sync, which refuses
    to run on a thread where Playwright keeps an event loop.
    """

    def save() -> Job:
        try:
            with open(SAMPLE_AUDIO, "rb") as fh:
                audio = ContentFile(fh.read(), "standup.wav")
            return submit_job(Job(title=title, audio=audio), enqueue=False)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(save).result()


def processed(platform: Any, api_key: str, title: str = "Browser stand-up") -> dict[str, Any]:
    """Submit the sample through the API, let the worker finish it, return the job as the API shows it."""
    api = platform.api(api_key)
    with open(SAMPLE_AUDIO, "rb") as fh:
        response = api.post(
            f"{platform.url}/api/v1/jobs/",
            files={"audio": ("standup.wav", fh, "audio/wav")},
            data={"title": title},
            timeout=30,
        )
    assert response.status_code == 201, response.text
    assert wait_for_job(response.json()["id"], timeout=90).status == Job.Status.COMPLETED
    return api.get(f"{platform.url}/api/v1/jobs/{response.json()['id']}/", timeout=10).json()


def test_the_job_page_moves_from_queued_to_done_without_a_reload(
    platform, page, fake_aai, monkeypatch
):
    monkeypatch.setattr(fake_aai, "processing_seconds", 1.0)  # long enough to watch
    job = queued_job("Live progress")
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    page.goto(f"{platform.url}/jobs/{job.id}/?token={make_viewer_token(job)}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("#job-stages li.current")).to_have_attribute("data-stage", "queued")
    expect(page.locator("#job-live")).to_have_attribute("data-mode", "live")
    page.evaluate(RECORD_STATES)

    enqueue_next(job.id)
    expect(page.locator("#job-result")).to_be_visible(timeout=60_000)

    seen = page.evaluate("window.__seen")
    assert seen[0] == "pending/queued"
    assert "processing/transcribing" in seen and "processing/analyzing" in seen
    assert seen[-1] == "completed/-"
    assert page.evaluate("window.__sameDocument") is True and len(navigations) == 1
    assert len(sockets) == 1  # the updates came over the websocket
    expect(page.locator("#job-status")).to_have_text("Completed")
    expect(page.locator("#job-percent")).to_have_text("100%")
    expect(page.locator("#job-stages li.done")).to_have_count(6)
    meeting = Meeting.objects.get(job_id=job.id)
    expect(page.locator("#job-result-link")).to_have_attribute(
        "href", re.compile(rf"/meetings/{meeting.id}/\?token=")
    )
    expect(page.locator("#job-timeline")).to_contain_text("Transcript saved")


def test_the_job_page_falls_back_to_polling_when_the_socket_is_down(
    platform, page, fake_aai, monkeypatch
):
    monkeypatch.setattr(fake_aai, "processing_seconds", 3.5)  # longer than a polling interval
    job = queued_job("Socket down")
    page.route_web_socket(re.compile(r"/ws/jobs/"), lambda ws: ws.close())
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/state/" in r.url else None)

    page.goto(f"{platform.url}/jobs/{job.id}/?token={make_viewer_token(job)}")
    expect(page.locator("#job-live")).to_have_attribute("data-mode", "polling")
    page.evaluate(RECORD_STATES)
    enqueue_next(job.id)

    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    expect(page.locator("#job-result")).to_be_visible()
    seen = page.evaluate("window.__seen")
    assert seen[0] == "pending/queued" and "processing/transcribing" in seen
    assert seen[-1] == "completed/-"
    assert page.evaluate("window.__sameDocument") is True
    assert len(polls) >= 2


def test_staff_retry_a_failed_job_from_its_page(platform, page):
    with open(SAMPLE_AUDIO, "rb") as fh:
        job = Job.objects.create(
            title="Failed once",
            audio=ContentFile(fh.read(), "standup.wav"),
            status=Job.Status.FAILED,
            stage=Job.Stage.TRANSCRIBING,
            progress=15,
            error_code="provider_unavailable",
            error_message="AssemblyAI 503 (gave up after 3 attempts)",
        )
    staff = get_user_model().objects.create_user("staff", password="staff-pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="retry_job"))
    page.goto(f"{platform.url}/admin/login/?next=/jobs/{job.id}/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-pw")
    page.click("input[type=submit]")
    expect(page.locator("#job-error")).to_contain_text("stayed down after several tries")

    page.get_by_role("button", name="Retry this job").click()
    expect(page.locator(".flash")).to_contain_text("Retry queued")
    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    expect(page.locator("#job-error")).to_be_hidden()
    expect(page.locator("#job-retry")).to_be_hidden()
    expect(page.locator("#job-result")).to_be_visible()


def test_the_meeting_page_shows_the_speakers_and_the_summary(platform, page, api_key):
    job = processed(platform, api_key)
    page.goto(job["results_url"])
    expect(page.locator("h1")).to_have_text("Browser stand-up")
    speakers = page.locator("#speakers .speakers li")
    expect(speakers).to_have_count(2)
    expect(page.locator("#speakers")).to_contain_text("Alice")
    expect(page.locator("#speakers")).to_contain_text("Bob")
    shares = [int(s.rstrip("%")) for s in page.locator("#speakers .share strong").all_inner_texts()]
    assert sum(shares) in (99, 100, 101) and all(s > 0 for s in shares)
    expect(page.locator("#summary")).to_contain_text(CANNED["summary"]["summary"])
    expect(page.locator("#action-items")).to_contain_text("Send the report")
    expect(page.locator("#action-items .owner")).to_have_text("Bob")
    expect(page.locator("#decisions")).to_contain_text("Ship on Monday")
    expect(page.locator(".turn .who").first).to_have_text(re.compile("Alice|Bob"))


def test_clicking_a_segment_seeks_the_audio(platform, page, api_key):
    job = processed(platform, api_key)
    page.goto(job["results_url"])
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15_000)
    assert page.evaluate("document.getElementById('player').duration") > 40

    segment = page.locator(".segment").nth(3)
    start = int(segment.get_attribute("data-start"))
    assert start > 0
    segment.click()
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {start / 1000}) < 1.5",
        timeout=10_000,
    )
    expect(segment).to_have_class(re.compile(r"\bplaying\b"))
    expect(page.locator(".segment.playing")).to_have_count(1)

    # An action item's moment seeks the same way.
    page.evaluate("document.getElementById('player').pause()")
    page.locator("#action-items a.moment").first.click()
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 0) < 1.5")
    expect(page.locator(".segment").first).to_have_class(re.compile(r"\bplaying\b"))


def test_the_search_filters_and_highlights_matches(platform, page, api_key):
    job = processed(platform, api_key)
    page.goto(job["results_url"])
    texts = page.locator(".segment .text").all_inner_texts()
    expected = sum(t.lower().count("report") for t in texts)
    matching = sum(1 for t in texts if "report" in t.lower())
    assert expected >= 1 and matching < len(texts)

    page.fill("#search", "REPORT")
    expect(page.locator("#transcript mark")).to_have_count(expected)
    for mark in page.locator("#transcript mark").all_inner_texts():
        assert mark.lower() == "report"
    expect(page.locator(".segment:visible")).to_have_count(matching)
    expect(page.locator("#search-count")).to_contain_text(f"{expected} match")

    page.fill("#search", "no such words anywhere")
    expect(page.locator("#search-empty")).to_be_visible()
    page.locator("#search").press("Escape")
    expect(page.locator("#transcript mark")).to_have_count(0)
    expect(page.locator(".segment:visible")).to_have_count(len(texts))
    page.fill("#search", "report")  # leave the highlight in the screenshot
    expect(page.locator("#transcript mark")).to_have_count(expected)


def test_transcript_markup_renders_as_text(platform, page, api_key, fake_aai, monkeypatch):
    monkeypatch.setattr(
        fake_aai,
        "utterances",
        [("A", f"Hello {XSS} there"), ("B", "<img src=x onerror=window.__xss=2> fine")],
    )
    job = processed(platform, api_key, title="<b>Markup</b> meeting")
    page.goto(job["results_url"])
    expect(page.locator(".segment .text").first).to_contain_text(XSS)
    expect(page.locator(".segment .text").nth(1)).to_contain_text(
        "<img src=x onerror=window.__xss=2>"
    )
    expect(page.locator("h1")).to_have_text("<b>Markup</b> meeting")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#transcript script, #transcript img, h1 b").count() == 0
    page.fill("#search", "script")  # highlighting builds text nodes, never markup
    expect(page.locator("#transcript mark")).to_have_count(2)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_the_meeting_page_fits_a_phone_screen(platform, page, api_key):
    job = processed(platform, api_key)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(job["results_url"])
    expect(page.locator("#summary")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#search").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390


@pytest.mark.parametrize("form", ["query", "hash"])
def test_a_time_in_the_url_opens_the_page_at_that_moment(platform, page, api_key, form):
    job = processed(platform, api_key)
    page.goto(job["results_url"])
    start = int(page.locator(".segment").nth(3).get_attribute("data-start"))
    seconds = start // 1000 + 1
    suffix = f"&t={seconds}" if form == "query" else f"#t=0:{seconds:02d}"
    page.goto(job["results_url"] + suffix)
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15_000)
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {seconds}) < 0.5",
        timeout=10_000,
    )
    expect(page.locator(".segment.playing")).to_have_count(1)
    playing = int(page.locator(".segment.playing").get_attribute("data-start"))
    assert playing <= seconds * 1000


def test_search_by_meaning_lists_moments_that_seek_the_player(platform, page, api_key):
    job = processed(platform, api_key)
    page.goto(job["results_url"])
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=15_000)
    page.fill("#search", "when will the release ship")
    page.locator("#search-meaning").click()
    hits = page.locator("#meaning-hits li")
    expect(hits.first).to_be_visible()
    expect(page.locator("#search-count")).to_contain_text("by meaning")
    hits.first.locator("a.moment").click()
    expect(page.locator(".segment.playing")).to_have_count(1)
