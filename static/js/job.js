// Live job page: a websocket for updates, reconnecting with backoff, and
// polling the job page's state endpoint while the socket is down.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.jobId, token = root.dataset.token;
  const order = ["queued", "transcribing", "analyzing", "saving", "notifying", "done"];
  const $ = (id) => document.getElementById(id);
  let retries = 0, pollTimer = null, finished = false;

  function render(s) {
    $("job-status").textContent = s.status;
    $("job-stage").textContent = s.stage;
    $("job-bar").style.width = s.progress + "%";
    $("job-bar").parentElement.setAttribute("aria-valuenow", s.progress);
    if (s.message) $("job-message").textContent = s.message;
    const at = order.indexOf(s.stage);
    document.querySelectorAll("#job-stages li").forEach((li) => {
      const i = order.indexOf(li.dataset.stage);
      li.classList.toggle("done", i < at || s.stage === "done");
      li.classList.toggle("current", i === at && s.stage !== "done");
    });
    if (s.results_url) { $("job-result-link").href = s.results_url; $("job-result").hidden = false; }
    if (s.status === "failed") { $("job-error").hidden = false; if (s.message) $("job-error").textContent = s.message; }
    finished = ["completed", "failed", "cancelled"].includes(s.status);
  }

  function poll() {
    if (finished) return;
    fetch(`/jobs/${jobId}/state/?token=${encodeURIComponent(token)}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null)).then((s) => { if (s) render(s); })
      .catch(() => {});
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/jobs/${jobId}/?token=${encodeURIComponent(token)}`);
    ws.onopen = () => { retries = 0; clearInterval(pollTimer); pollTimer = null; };
    ws.onmessage = (e) => render(JSON.parse(e.data));
    ws.onclose = () => {
      if (finished) return;
      if (!pollTimer) pollTimer = setInterval(poll, 3000);
      retries += 1;
      setTimeout(connect, Math.min(30000, 1000 * 2 ** Math.min(retries, 5)));
    };
  }
  render({ status: root.dataset.status, stage: root.dataset.stage, progress: root.dataset.progress,
           message: "", results_url: $("job-result").hidden ? null : $("job-result-link").href });
  connect();
})();
