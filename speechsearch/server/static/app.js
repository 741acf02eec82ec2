// speechsearch web page: search by text or by a clip, play the moments found, list and remove
// indexed files. Plain JS, no build step, nothing loaded from elsewhere. It talks to the same
// server's /api/ routes (docs/server.md), relative to the page so a path prefix works too.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = "speechsearch.apiKey";      // sessionStorage: gone when the tab closes
  const FIELDS_STORE = "speechsearch.fields";   // localStorage: the agent/date field names
  const MAX_RECORD_SECONDS = 30;                // search-audio uses a clip's first 30 s
  // not highlighted unless the query holds nothing else
  const STOPWORDS = new Set(("a an and are as at be but by do for from had has have i in is it its me my " +
    "of on or so that the their them they this to was we were what with you your").split(" "));

  // -- API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, name, detail) {
      super(detail);
      this.status = status;
      this.error = name;
      this.detail = detail;
    }
  }

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORE) || ""; } catch (e) { return ""; }
  }

  // An error body as {"error": name, "detail": message} (the server's shape), or FastAPI's
  // {"detail": "..."} / {"detail": [{"loc": [...], "msg": "..."}]}.
  function errorFrom(status, body, statusText) {
    let name = `HTTP ${status}`;
    let detail = statusText || "the request failed";
    if (body && typeof body === "object") {
      if (typeof body.error === "string") name = body.error;
      if (typeof body.detail === "string") detail = body.detail;
      else if (Array.isArray(body.detail)) {
        detail = body.detail.map((d) => (d.loc ? d.loc.join(".") + ": " : "") + (d.msg || "")).join("; ");
      }
    }
    return new ApiError(status, name, detail);
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = storedKey();
    if (key) headers.set("X-API-Key", key);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (e) {
      throw new ApiError(0, "NetworkError", `the server did not answer (${e.message})`);
    }
    let body = null;
    if ((response.headers.get("content-type") || "").includes("json")) {
      try { body = await response.json(); } catch (e) { body = null; }
    }
    if (!response.ok) throw errorFrom(response.status, body, response.statusText);
    return body;
  }

  // -- errors and the key form --------------------------------------------------------------

  const errorBox = $("error");
  const keyForm = $("key-form");
  const pending = new Set();  // actions to run again once a key is given

  function showError(e) {
    const name = e instanceof ApiError ? e.error : (e && e.name) || "Error";
    const detail = e instanceof ApiError ? e.detail : (e && e.message) || String(e);
    errorBox.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = name + ": ";
    errorBox.append(strong, document.createTextNode(detail));
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  function needsKey(e) {
    return e instanceof ApiError && (e.status === 401 || (e.status === 403 && /X-API-Key/.test(e.detail)));
  }

  function askForKey(e) {
    $("key-message").textContent = e.status === 401
      ? "This server needs an API key. Enter it to continue."
      : `That key was refused (${e.detail}). Enter the right one.`;
    keyForm.hidden = false;
    $("key").focus();
  }

  // Run an action that calls the API: show its error, or ask for the key and run it again later.
  async function guarded(action) {
    try {
      await action();
    } catch (e) {
      if (needsKey(e)) {
        pending.add(action);
        askForKey(e);
      } else {
        showError(e);
      }
    }
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    try { sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* private mode: this page load only */ }
    keyForm.hidden = true;
    $("key").value = "";
    clearError();
    const again = [...pending];
    pending.clear();
    again.forEach((action) => guarded(action));
  });

  // -- formatting ---------------------------------------------------------------------------

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds + 1e-6));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function baseName(path) {
    return String(path).split(/[\\/]/).pop() || String(path);
  }

  function escapeHTML(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                       "'": "&#39;" })[c]);
  }

  // The words of a query worth highlighting: lower case, no duplicates, stopwords dropped
  // (unless that leaves nothing).
  function queryWords(query) {
    const words = [...new Set(String(query).toLocaleLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu) || [])];
    const content = words.filter((w) => !STOPWORDS.has(w));
    return content.length ? content : words;
  }

  // `text` as HTML with whole-word, case-insensitive matches of the query's words in <mark>.
  // The text is split at the matches and each piece escaped, so nothing in it becomes markup
  // and no match lands inside an entity.
  function highlight(text, query) {
    const words = queryWords(query);
    if (!words.length) return escapeHTML(text);
    const alternatives = words.sort((a, b) => b.length - a.length)
      .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/['’]/g, "['’]")).join("|");
    const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives})(?![\\p{L}\\p{N}])`, "giu");
    let html = "", last = 0;
    for (const m of String(text).matchAll(re)) {
      html += escapeHTML(text.slice(last, m.index)) + "<mark>" + escapeHTML(m[0]) + "</mark>";
      last = m.index + m[0].length;
    }
    return html + escapeHTML(text.slice(last));
  }

  // -- filters ------------------------------------------------------------------------------

  function fieldName(id, fallback) {
    return $(id).value.trim() || fallback;
  }

  function saveFieldNames() {
    try {
      localStorage.setItem(FIELDS_STORE, JSON.stringify({ agent: $("agent-field").value.trim(),
                                                          date: $("date-field").value.trim() }));
    } catch (e) { /* not kept */ }
  }

  function loadFieldNames() {
    try {
      const saved = JSON.parse(localStorage.getItem(FIELDS_STORE) || "{}");
      if (saved.agent) $("agent-field").value = saved.agent;
      if (saved.date) $("date-field").value = saved.date;
    } catch (e) { /* defaults */ }
  }

  // The `where` JSON of the filled filters (docs/filters.md), or null when none is filled.
  // A To date covers its whole day (UTC).
  function whereFilter() {
    const where = {};
    const agent = $("agent").value.trim();
    if (agent) where[fieldName("agent-field", "agent")] = agent;
    const from = $("date-from").value, to = $("date-to").value;
    if (from && to && from > to) throw new ApiError(0, "InvalidInput", "the From date is after the To date");
    if (from || to) {
      const range = {};
      if (from) range.$gte = from;
      if (to) range.$lte = `${to}T23:59:59.999`;
      where[fieldName("date-field", "date")] = range;
    }
    return Object.keys(where).length ? JSON.stringify(where) : null;
  }

  function resultCount() {
    const k = parseInt($("k").value, 10);
    if (!(k >= 1 && k <= 100)) throw new ApiError(0, "InvalidInput", "Results must be a number from 1 to 100");
    return String(k);
  }

  // -- results and playback -----------------------------------------------------------------

  const results = $("results");
  const status = $("status");
  const player = $("player");
  let current = null;  // {hit, button} of the span loaded in the player

  function busy(on) {
    for (const id of ["search-button", "clip-button"]) $(id).disabled = on;
    results.setAttribute("aria-busy", on ? "true" : "false");
  }

  function showResults(hits, query, label) {
    stopPlayer();
    results.replaceChildren(...hits.map((hit) => renderHit(hit, query)));
    status.textContent = hits.length
      ? `${hits.length} result${hits.length === 1 ? "" : "s"} ${label}`
      : `No results ${label}.`;
  }

  function renderHit(hit, query) {
    const li = document.createElement("li");
    li.className = "hit";
    li.dataset.path = hit.path;
    li.dataset.start = hit.start;
    li.dataset.end = hit.end;

    const head = document.createElement("div");
    head.className = "hit-head";
    const play = document.createElement("button");
    play.type = "button";
    play.className = "play";
    const span = `${clock(hit.start)}–${clock(hit.end)}`;
    play.setAttribute("aria-label", `Play ${span} of ${baseName(hit.path)}`);
    play.textContent = "▶";
    play.addEventListener("click", () => toggle(hit, play));
    const name = document.createElement("h3");
    name.className = "file";
    name.textContent = baseName(hit.path);
    name.title = hit.path;
    const time = document.createElement("span");
    time.className = "span";
    time.textContent = span;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `score ${Number(hit.score).toFixed(3)}`;
    score.title = Object.entries(hit.scores || {}).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ");
    head.append(play, name, time, score);
    for (const tag of [hit.speaker, hit.language]) {
      if (!tag) continue;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = tag;
      head.append(badge);
    }

    if (hit.id) {
      const like = document.createElement("button");
      like.type = "button";
      like.className = "similar";
      like.textContent = "Similar calls";
      like.setAttribute("aria-label", `Moments like ${span} of ${baseName(hit.path)} in other calls`);
      like.addEventListener("click", () => guarded(() => similarTo({ hit: hit.id },
        `like ${span} of ${baseName(hit.path)}`)));
      head.append(like);
    }

    const text = document.createElement("p");
    text.className = "snippet";
    text.innerHTML = highlight(hit.text || "", query);
    li.append(head, text);
    if (hit.query && hit.query.text) {
      const why = document.createElement("p");
      why.className = "why muted";
      why.textContent = `like ${clock(hit.query.start)}–${clock(hit.query.end)} of ${baseName(hit.query.path)}: ` +
                        hit.query.text;
      li.append(why);
    }

    const meta = Object.entries(hit.metadata || {});
    if (meta.length) {
      const line = document.createElement("p");
      line.className = "meta muted";
      line.textContent = meta.map(([k, v]) => `${k}: ${v}`).join(" · ");
      li.append(line);
    }
    return li;
  }

  // Playback: a hit's audio_url serves exactly [start, end] of its file (a signed link, since
  // <audio> cannot send the key), so the element's time 0 is hit.start in the file. The player
  // keeps that offset in data-offset (and the span's end in data-end): file time = offset +
  // currentTime, and it stops at data-end.
  function toggle(hit, button) {
    if (current && current.hit === hit) {
      if (player.paused) playNow(); else player.pause();
      return;
    }
    if (current) current.button.textContent = "▶";
    current = { hit, button };
    player.dataset.offset = hit.start;
    player.dataset.end = hit.end;
    player.dataset.path = hit.path;
    player.src = hit.audio_url;
    $("now-playing").textContent = `${baseName(hit.path)} ${clock(hit.start)}–${clock(hit.end)}`;
    $("now-playing").title = hit.path;
    $("player-bar").hidden = false;
    playNow();
  }

  function playNow() {
    player.play().catch((e) => {
      if (e.name !== "AbortError") showError(e);  // AbortError: another span was chosen meanwhile
    });
  }

  function stopPlayer() {
    player.pause();
    player.removeAttribute("src");
    delete player.dataset.offset;
    delete player.dataset.end;
    delete player.dataset.path;
    player.load();
    current = null;
    $("player-bar").hidden = true;
  }

  function fileTime() {
    return Number(player.dataset.offset || 0) + player.currentTime;
  }

  player.addEventListener("timeupdate", () => {
    if (!current) return;
    const end = Number(player.dataset.end);
    $("now-time").textContent = `at ${clock(fileTime())} of the file`;
    if (fileTime() >= end && !player.paused) player.pause();
  });
  player.addEventListener("play", () => { if (current) current.button.textContent = "❚❚"; });
  for (const type of ["pause", "ended"]) {
    player.addEventListener(type, () => { if (current) current.button.textContent = "▶"; });
  }
  player.addEventListener("playing", () => {
    if (current) current.button.setAttribute("aria-label", `Pause ${baseName(current.hit.path)}`);
  });
  player.addEventListener("pause", () => {
    if (current) {
      const h = current.hit;
      current.button.setAttribute("aria-label", `Play ${clock(h.start)}–${clock(h.end)} of ${baseName(h.path)}`);
    }
  });
  // The element reports no reason; ask the server (an expired link is 403 with a JSON detail).
  player.addEventListener("error", async () => {
    if (!player.getAttribute("src")) return;
    try {
      const response = await fetch(player.src);
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      showError(response.ok ? new ApiError(0, "AudioError", "the browser could not play this audio")
                            : errorFrom(response.status, body, response.statusText));
    } catch (e) {
      showError(new ApiError(0, "NetworkError", "the audio could not be loaded"));
    }
  });

  // -- search by text -----------------------------------------------------------------------

  async function searchText() {
    const q = $("q").value.trim();
    if (!q) return;
    const params = new URLSearchParams({ q, k: resultCount() });
    const speaker = $("speaker").value;
    if (speaker) params.set("speaker", speaker);
    const where = whereFilter();
    if (where) params.set("where", where);
    clearError();
    busy(true);
    status.textContent = "Searching…";
    try {
      const data = await api(`api/search?${params}`);
      showResults(data.hits || [], q, `for “${q}”`);
    } catch (e) {
      status.textContent = "";
      throw e;
    } finally {
      busy(false);
    }
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(searchText);
  });

  // -- search by example --------------------------------------------------------------------

  async function searchClip(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("k", resultCount());
    form.append("mode", $("mode").value);
    const where = whereFilter();
    if (where) form.append("where", where);
    clearError();
    busy(true);
    status.textContent = `Searching with ${file.name}…`;
    try {
      const data = await api("api/search-audio", { method: "POST", body: form });
      showResults(data.hits || [], "", `like ${file.name}`);
    } catch (e) {
      status.textContent = "";
      throw e;
    } finally {
      busy(false);
    }
  }

  $("clip-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("clip").files[0];
    if (!file) {
      showError(new ApiError(0, "NoClip", "choose an audio file first, or record one"));
      return;
    }
    guarded(() => searchClip(file));
  });

  let recorder = null;

  async function startRecording() {
    const button = $("record-button"), label = $("record-status");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      throw new ApiError(0, "RecordingUnavailable", "this browser cannot record here (recording needs a " +
                                                    "page served over https or from localhost)");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      throw new ApiError(0, "MicrophoneError", `no microphone (${e.name}: ${e.message})`);
    }
    const type = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/ogg", "audio/mp4"]
      .find((t) => MediaRecorder.isTypeSupported(t));
    const chunks = [];
    const started = Date.now();
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
    const tick = setInterval(() => {
      const seconds = (Date.now() - started) / 1000;
      label.textContent = `Recording ${clock(seconds)}`;
      if (seconds >= MAX_RECORD_SECONDS && recorder && recorder.state === "recording") recorder.stop();
    }, 250);
    recorder.addEventListener("stop", () => {
      clearInterval(tick);
      stream.getTracks().forEach((t) => t.stop());
      const mime = recorder.mimeType || type || "audio/webm";
      recorder = null;
      button.textContent = "Record";
      button.setAttribute("aria-pressed", "false");
      label.textContent = "";
      const ext = mime.includes("ogg") ? "ogg" : mime.includes("mp4") ? "m4a" : "webm";
      const clip = new File(chunks, `recording.${ext}`, { type: mime.split(";")[0] });
      guarded(() => searchClip(clip));
    });
    recorder.start(250);
    button.textContent = "Stop";
    button.setAttribute("aria-pressed", "true");
    label.textContent = "Recording 00:00";
  }

  $("record-button").addEventListener("click", () => {
    clearError();
    if (recorder && recorder.state === "recording") recorder.stop();
    else guarded(startRecording);
  });

  // -- files --------------------------------------------------------------------------------

  async function loadFiles() {
    const data = await api("api/files");
    const files = (data.files || []).slice().sort((a, b) => a.path.localeCompare(b.path));
    const rows = files.map((f) => {
      const tr = document.createElement("tr");
      tr.dataset.path = f.path;
      const cells = [
        [f.path, "path"],
        [f.duration ? clock(f.duration) : "–", "num"],
        [f.language || "–", ""],
        [f.status, `state state-${f.status}`],
        [f.added_at ? new Date(f.added_at).toLocaleString() : "–", ""],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      tr.cells[4].title = f.added_at || "";
      const td = document.createElement("td");
      const like = document.createElement("button");
      like.type = "button";
      like.className = "similar";
      like.textContent = "Similar";
      like.setAttribute("aria-label", `Calls like ${f.path}`);
      like.addEventListener("click", () => guarded(() => similarTo({ path: f.path }, `like ${baseName(f.path)}`)));
      td.append(like, " ");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${f.path}`);
      remove.addEventListener("click", () => guarded(() => removeFile(f.path)));
      td.append(remove);
      tr.append(td);
      return tr;
    });
    $("files-body").replaceChildren(...rows);
    const seconds = files.reduce((sum, f) => sum + (f.duration || 0), 0);
    $("files-status").textContent = files.length
      ? `${files.length} file${files.length === 1 ? "" : "s"}, ${clock(seconds)} of audio`
      : "No files indexed yet.";
  }

  async function removeFile(path) {
    if (!window.confirm(`Remove ${path} from the index?\n\nIts transcript and vectors are deleted ` +
                        "(and the server's copy, if it was uploaded).")) return;
    const data = await api(`api/files?${new URLSearchParams({ path })}`, { method: "DELETE" });
    await loadFiles();
    $("files-status").textContent = `Removed ${data.removed} file${data.removed === 1 ? "" : "s"}. ` +
                                    $("files-status").textContent;
    guarded(loadInfo);
  }

  $("files-refresh").addEventListener("click", () => { clearError(); guarded(loadFiles); });

  // -- similar calls and topics ---------------------------------------------------------------

  async function similarTo(params, label) {
    const data = await api(`api/similar?${new URLSearchParams({ ...params, k: $("k").value || "10" })}`);
    if (location.hash !== "#search" && location.hash !== "") location.hash = "#search";
    showResults(data.hits || [], "", label);
  }

  function renderTopic(topic) {
    const li = document.createElement("li");
    li.className = "topic card";
    const head = document.createElement("h3");
    head.textContent = topic.label;
    const size = document.createElement("span");
    size.className = "muted";
    size.textContent = ` ${topic.size} call${topic.size === 1 ? "" : "s"}`;
    head.append(size);
    const terms = document.createElement("p");
    terms.className = "terms muted";
    terms.textContent = (topic.terms || []).join(", ");
    li.append(head, terms);
    const counts = Object.entries(topic.counts || {});
    if (counts.length) {
      const chart = document.createElement("div");
      chart.className = "chart";
      chart.setAttribute("role", "img");
      chart.setAttribute("aria-label", counts.map(([k, v]) => `${k}: ${v}`).join(", "));
      const most = Math.max(...counts.map(([, v]) => v));
      for (const [period, n] of counts) {
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.style.height = `${Math.max(4, Math.round(60 * n / most))}px`;
        bar.title = `${period}: ${n}`;
        const tick = document.createElement("span");
        tick.textContent = period;
        const column = document.createElement("div");
        column.className = "column";
        column.append(bar, tick);
        chart.append(column);
      }
      li.append(chart);
    }
    const examples = document.createElement("ol");
    examples.className = "results";
    examples.replaceChildren(...(topic.examples || []).map((hit) => renderHit(hit, "")));
    li.append(examples);
    return li;
  }

  async function loadTopics() {
    const params = { period: $("topics-period").value };
    const by = $("topics-by").value.trim();
    if (by) params.by = by;
    const n = $("topics-n").value;
    if (n) params.n = n;
    $("topics-status").textContent = "Finding topics…";
    const data = await api(`api/topics?${new URLSearchParams(params)}`);
    const topics = data.topics || [];
    $("topics-list").replaceChildren(...topics.map(renderTopic));
    $("topics-status").textContent = topics.length
      ? `${topics.length} topic${topics.length === 1 ? "" : "s"} over ${topics.reduce((s, t) => s + t.size, 0)} calls`
      : "No calls indexed yet.";
  }

  $("topics-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    guarded(loadTopics);
  });

  // -- the index, and views -----------------------------------------------------------------

  async function loadInfo() {
    const info = await api("api/info");
    const hours = (info.audio_seconds || 0) / 3600;
    const amount = hours >= 1 ? `${hours.toFixed(1)} h` : `${Math.round((info.audio_seconds || 0) / 60)} min`;
    const models = info.models || {};
    const names = [models.asr_model, models.text_model && models.text_model.split("/").pop()].filter(Boolean).join(", ");
    const tuned = info.tuned ? ` (tuned ${String(info.tuned.at).slice(0, 10)}: ${[info.tuned.text ? "text model" : "",
      info.tuned.fusion ? "fusion weights" : ""].filter(Boolean).join(" and ")})` : "";
    $("index-info").textContent = `${info.files} file${info.files === 1 ? "" : "s"}, ${amount} of audio` +
      (names ? ` · models: ${names}${tuned}` : "");
  }

  function showView() {
    const view = { "#files": "files", "#topics": "topics" }[location.hash] || "search";
    $("view-search").hidden = view !== "search";
    $("view-files").hidden = view !== "files";
    $("view-topics").hidden = view !== "topics";
    for (const name of ["search", "files", "topics"]) {
      const tab = $(`tab-${name}`);
      if (name === view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    if (view === "files") guarded(loadFiles);
    if (view === "topics" && !$("topics-list").children.length) {
      if (!$("topics-by").value) $("topics-by").value = fieldName("date-field", "date");
      guarded(loadTopics);
    }
  }

  window.addEventListener("hashchange", () => { clearError(); showView(); });
  for (const id of ["agent-field", "date-field"]) $(id).addEventListener("change", saveFieldNames);

  // for tests and the console
  window.speechsearch = { highlight, queryWords, whereFilter, clock };

  loadFieldNames();
  showView();
  guarded(loadInfo);
})();
