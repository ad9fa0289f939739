// Results page: click a transcript segment (or an action item's moment) to
// play from there, highlight the segment playing, and search the transcript
// (as typed, or by meaning through the meeting's search endpoint). A time in
// the URL (?t=90, #t=90 or #t=1:30) opens the page at that moment.
// Transcript text is only ever handled as text nodes, never as HTML.
(function () {
  "use strict";
  const player = document.getElementById("player");
  const search = document.getElementById("search");
  const count = document.getElementById("search-count");
  const empty = document.getElementById("search-empty");
  const segments = Array.from(document.querySelectorAll(".segment")).map((el) => ({
    el,
    start: Number(el.dataset.start),
    end: Number(el.dataset.end),
    text: el.querySelector(".text"),
    original: el.querySelector(".text").textContent,
  }));
  const turns = Array.from(document.querySelectorAll(".turn"));
  let playing = null;

  function highlight(ms) {
    let found = null;
    for (const seg of segments) {
      if (seg.start > ms) break;
      found = seg;
      if (ms < seg.end) break;
    }
    if (found === playing) return;
    if (playing) { playing.el.classList.remove("playing"); playing.el.removeAttribute("aria-current"); }
    playing = found;
    if (playing) { playing.el.classList.add("playing"); playing.el.setAttribute("aria-current", "true"); }
  }

  function seek(ms) {
    highlight(ms);
    if (!player) return;
    player.currentTime = ms / 1000;
    const started = player.play();
    if (started && started.catch) started.catch(() => {});
  }

  segments.forEach((seg) => {
    seg.el.addEventListener("click", () => {
      // Selecting text to copy it is not a request to play.
      if (String(window.getSelection() || "")) return;
      seek(seg.start);
    });
    seg.el.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(seg.start); }
    });
  });

  document.querySelectorAll("a.moment[data-seek]").forEach((link) => {
    link.addEventListener("click", (e) => {
      const target = document.querySelector(link.getAttribute("href"));
      if (!target) return;
      e.preventDefault();
      // A moment hidden by the current search would be unreachable: clear it.
      if (search && target.closest("[hidden]")) { search.value = ""; filter(""); }
      history.replaceState(null, "", link.getAttribute("href"));
      target.scrollIntoView({ behavior: "smooth", block: "center" });
      target.focus({ preventScroll: true });
      seek(Number(link.dataset.seek));
    });
  });

  if (player) player.addEventListener("timeupdate", () => highlight(player.currentTime * 1000));

  const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  function marked(text, pattern) {
    const fragment = document.createDocumentFragment();
    let last = 0, hits = 0, match;
    pattern.lastIndex = 0;
    while ((match = pattern.exec(text)) !== null) {
      fragment.append(document.createTextNode(text.slice(last, match.index)));
      const mark = document.createElement("mark");
      mark.textContent = match[0];
      fragment.append(mark);
      last = match.index + match[0].length;
      hits += 1;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return { fragment, hits };
  }

  function filter(query) {
    const q = query.trim();
    const pattern = q ? new RegExp(escapeRegExp(q), "gi") : null;
    let total = 0, shown = 0;
    segments.forEach((seg) => {
      if (!pattern) {
        seg.text.textContent = seg.original;
        seg.el.hidden = false;
        return;
      }
      const { fragment, hits } = marked(seg.original, pattern);
      seg.text.replaceChildren(fragment);
      seg.el.hidden = hits === 0;
      total += hits;
      shown += hits ? 1 : 0;
    });
    turns.forEach((turn) => { turn.hidden = !turn.querySelector(".segment:not([hidden])"); });
    count.textContent = pattern ? `${total} match${total === 1 ? "" : "es"} in ${shown} passage${shown === 1 ? "" : "s"}` : "";
    if (empty) empty.hidden = !pattern || total > 0;
  }

  // The segment spoken at `ms`, shown (clearing a search that hides it) and focused.
  function goTo(ms) {
    let target = null;
    for (const seg of segments) { if (seg.start > ms) break; target = seg; }
    target = target || segments[0];
    if (!target) return;
    if (search && target.el.closest("[hidden]")) { search.value = ""; filter(""); }
    target.el.scrollIntoView({ block: "center" });
    target.el.focus({ preventScroll: true });
    highlight(ms);
    if (player) player.currentTime = ms / 1000;
  }

  function timeInUrl() {
    const fromHash = /(?:^#|&)t=([0-9:.]+)/.exec(window.location.hash);
    const raw = fromHash ? fromHash[1] : new URLSearchParams(window.location.search).get("t");
    if (!raw || !/^[0-9]+(?::[0-9]{1,2}){0,2}(?:\.[0-9]+)?$/.test(raw)) return null;
    return raw.split(":").reduce((total, part) => total * 60 + Number(part), 0) * 1000;
  }

  // 0:05, 12:30, 1:02:03: as the transcript shows times.
  function clock(ms) {
    const total = Math.floor(ms / 1000), h = Math.floor(total / 3600);
    const m = Math.floor(total / 60) % 60, s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  const meaning = document.getElementById("search-meaning");
  const meaningHits = document.getElementById("meaning-hits");
  if (meaning && meaningHits && search) {
    meaning.addEventListener("click", () => {
      const q = search.value.trim();
      if (!q) { search.focus(); return; }
      count.textContent = "Searching…";
      fetch(`${meaning.dataset.url}&mode=hybrid&q=${encodeURIComponent(q)}`, { credentials: "same-origin" })
        .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
        .then(({ ok, body }) => {
          meaningHits.replaceChildren();
          if (!ok) { count.textContent = (body.error && body.error.message) || "Search failed"; return; }
          count.textContent = `${body.count} passage${body.count === 1 ? "" : "s"} by meaning`;
          body.results.forEach((hit) => {
            const li = document.createElement("li");
            const link = document.createElement("a");
            link.href = `#t=${Math.floor(hit.start_ms / 1000)}`;
            link.className = "moment";
            link.textContent = clock(hit.start_ms);
            link.addEventListener("click", (e) => { e.preventDefault(); history.replaceState(null, "", link.getAttribute("href")); goTo(hit.start_ms); seek(hit.start_ms); });
            const who = document.createElement("strong");
            who.textContent = ` ${hit.speaker_name}: `;
            li.append(link, who, document.createTextNode(hit.text));
            meaningHits.append(li);
          });
          meaningHits.hidden = false;
        })
        .catch(() => { count.textContent = "Search failed"; });
    });
  }

  const startAt = timeInUrl();
  if (startAt !== null) goTo(startAt);
  window.addEventListener("hashchange", () => { const ms = timeInUrl(); if (ms !== null) goTo(ms); });

  if (search) {
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => filter(search.value), 120);
    });
    search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { search.value = ""; filter(""); }
    });
  }
})();
