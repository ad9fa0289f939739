// Live job page: a websocket for updates, reconnecting with backoff, and
// polling the state endpoint while the socket is down.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const jobId = root.dataset.jobId, token = root.dataset.token;
  const labels = JSON.parse($("job-labels").textContent);
  const order = Object.keys(labels.stage);
  const TERMINAL = ["completed", "failed", "cancelled"];
  const POLL_MS = 3000;
  const stateUrl = `/jobs/${jobId}/state/?token=${encodeURIComponent(token)}`;
  let socket = null, retries = 0, pollTimer = null, finished = false, lastKey = null;

  const clockText = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function setLive(mode, text) {
    const el = $("job-live");
    el.dataset.mode = mode;
    el.textContent = text;
  }

  function addEvent(message) {
    const li = document.createElement("li"), time = document.createElement("time");
    const span = document.createElement("span"), now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = clockText(now);
    span.textContent = message;
    li.append(time, " ", span);
    $("job-timeline").append(li);
    const none = $("job-timeline-empty");
    if (none) none.hidden = true;
  }

  function renderStages(s) {
    const at = order.indexOf(s.stage);
    const stopped = s.status === "failed" || s.status === "cancelled";
    document.querySelectorAll("#job-stages li").forEach((li) => {
      const i = order.indexOf(li.dataset.stage);
      const done = s.status === "completed" || i < at;
      li.classList.toggle("done", done);
      li.classList.toggle("current", !done && i === at && !stopped);
      li.classList.toggle("stopped", !done && i === at && stopped);
    });
    const chunk = /chunk (\d+)\s*\/\s*(\d+)/i.exec(s.message || "");
    $("job-chunk").textContent = s.stage === "analyzing" && chunk ? `chunk ${chunk[1]}/${chunk[2]}` : "";
  }

  function renderError(error) {
    $("job-error-explanation").textContent = error.explanation || "";
    $("job-error-code").textContent = error.code || "";
  }

  function render(s) {
    const status = $("job-status");
    status.textContent = labels.status[s.status] || s.status;
    status.dataset.status = s.status;
    $("job-percent").textContent = `${s.progress}%`;
    $("job-bar").value = s.progress;
    $("job-bar").dataset.status = s.status;
    if (s.message) $("job-message").textContent = s.message;
    const key = [s.status, s.stage, s.message].join("|");
    if (lastKey !== null && key !== lastKey && s.message) addEvent(s.message);
    lastKey = key;
    renderStages(s);
    if (s.results_url) $("job-result-link").href = s.results_url;
    $("job-result").hidden = !(s.status === "completed" && s.results_url);
    $("job-error").hidden = s.status !== "failed";
    $("job-cancelled").hidden = s.status !== "cancelled";
    const retry = $("job-retry");
    if (retry) retry.hidden = !(s.status === "failed" || s.status === "cancelled");
    if (s.error) renderError(s.error);
    // Websocket messages carry no error details: fetch them once.
    else if (s.status === "failed" && !("error" in s)) poll();
    finished = TERMINAL.includes(s.status);
    if (finished) {
      stopPolling();
      setLive("done", "Finished");
      if (socket) socket.close();
    }
  }

  function poll() {
    return fetch(stateUrl, { credentials: "same-origin", cache: "no-store" })
      .then((r) => {
        if (r.status === 403 || r.status === 404) { linkLost(); return null; }
        return r.ok ? r.json() : null;
      })
      .then((s) => { if (s) render(s); })
      .catch(() => {});
  }

  function startPolling() {
    if (pollTimer || finished) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function linkLost() {
    finished = true;
    stopPolling();
    setLive("lost", "This link is no longer valid");
    if (socket) socket.close();
  }

  function scheduleReconnect() {
    retries += 1;
    const delay = Math.min(30000, 1000 * 2 ** Math.min(retries - 1, 5));
    setTimeout(connect, delay * (0.75 + Math.random() / 2));
  }

  function connect() {
    if (finished) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try {
      ws = new WebSocket(`${proto}://${location.host}/ws/jobs/${jobId}/?token=${encodeURIComponent(token)}`);
    } catch (err) {
      startPolling();
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = () => { retries = 0; stopPolling(); setLive("live", "Live"); };
    ws.onmessage = (e) => { try { render(JSON.parse(e.data)); } catch (err) { /* ignore a bad frame */ } };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      if (finished) return;
      setLive("polling", "Reconnecting… checking every few seconds");
      startPolling();
      scheduleReconnect();
    };
  }

  document.querySelectorAll("#job-timeline time").forEach((t) => { t.textContent = clockText(new Date(t.dateTime)); });
  render(JSON.parse($("job-initial").textContent));
  if (!finished) connect();
})();
