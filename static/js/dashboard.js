// Staff dashboard: refresh the counts and the jobs in flight every few seconds.
(function () {
  "use strict";
  const REFRESH_MS = 2500;

  function cell(content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content;
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    const pill = document.createElement("span");
    pill.className = "dash-pill";
    pill.dataset.status = job.status;
    pill.textContent = job.status;
    const progress = document.createElement("span");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = job.progress;
    const pct = document.createElement("span");
    pct.className = "dash-pct";
    pct.textContent = ` ${job.progress}%`;
    progress.append(bar, pct);
    const message = cell(job.message);
    message.className = "dash-message";
    tr.append(cell(link(job.admin_url, job.title)), cell(pill), cell(job.stage), cell(progress), message,
      cell(link(job.page_url, "live page")));
    return tr;
  }

  function render(data) {
    data.counts.forEach((c) => {
      const li = document.querySelector(`#dash-counts li[data-status="${c.status}"]`);
      if (!li) return;
      li.querySelector(".dash-count-total").textContent = c.total;
      li.querySelector(".dash-count-recent").textContent = `${c.recent} in 24 h`;
    });
    document.getElementById("dash-in-flight").replaceChildren(...data.in_flight.map(row));
    document.getElementById("dash-in-flight-empty").hidden = data.in_flight.length > 0;
    document.getElementById("dash-updated").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  }

  function refresh(url) {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((data) => { if (data) render(data); })
      .catch(() => {})
      .finally(() => setTimeout(() => refresh(url), REFRESH_MS));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("dashboard");
    if (root) refresh(root.dataset.liveUrl);
  });
})();
