// Octavia review: the timeline, the list of lines and the selected line of one project.
// Plain JavaScript, no build step. The timeline canvas draws only the visible window and
// the list only the rows on screen, so a film's thousands of lines stay fast.
"use strict";

const LANE_H = 24;
const ROW_H = 28;
const LEAD_S = 0.5; // played before and after a line
const state = {
  project: null, energy: null, lang: null, pxPerS: 40, selected: null, stopAt: null,
  version: null,
};
const $ = (id) => document.getElementById(id);
const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
const BASE = meta("octavia-base"); // "" for octavia review, /review/jobs/ID on serve
const CSRF = meta("octavia-csrf"); // sent with every change
const at = (path) => (path.startsWith("/") ? BASE + path : path);

async function getJSON(url) {
  const response = await fetch(at(url), { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function colour(dub) {
  if (!dub) return "#bbb";
  if (dub.violations.length || dub.flagged) return "#d62728";
  if (dub.speed <= 1.0) return "#2ca02c";
  if (dub.speed <= 1.15) return "#bcbd22";
  return "#ff7f0e";
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - m * 60).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

function speakers() {
  return state.project.speakers.length
    ? state.project.speakers
    : [...new Set(state.project.lines.map((l) => l.speaker))].map((id) => ({ id, label: id }));
}

// -- the timeline ------------------------------------------------------------------------

function lanes() {
  const result = [];
  for (const speaker of speakers()) {
    result.push({ speaker: speaker.id, kind: "source", label: `${speaker.label} source` });
    result.push({ speaker: speaker.id, kind: "dub", label: `${speaker.label} ${state.lang}` });
  }
  return result;
}

function layoutTimeline() {
  const scroller = $("scroller");
  const all = lanes();
  $("labels").replaceChildren(...all.map((lane) => {
    const div = document.createElement("div");
    div.textContent = lane.label;
    return div;
  }));
  $("spacer").style.width = `${Math.ceil(state.project.duration * state.pxPerS) + 20}px`;
  const canvas = $("timeline");
  canvas.width = scroller.clientWidth;
  canvas.height = all.length * LANE_H;
  canvas.style.marginTop = "-1px";
  drawTimeline();
}

function drawTimeline() {
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  const left = $("scroller").scrollLeft;
  const px = state.pxPerS;
  const from = left / px;
  const to = (left + canvas.width) / px;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const all = lanes();
  // Seconds grid.
  ctx.fillStyle = "#eee";
  const step = px >= 40 ? 1 : px >= 8 ? 5 : 30;
  for (let t = Math.floor(from / step) * step; t <= to; t += step) {
    ctx.fillRect(t * px - left, 0, 1, canvas.height);
  }
  const rate = state.energy ? state.energy.rate : 20;
  all.forEach((lane, index) => {
    const top = index * LANE_H;
    const lines = state.project.lines.filter((l) => l.speaker === lane.speaker);
    for (const line of lines) {
      const dub = line.dub[state.lang];
      const start = lane.kind === "source" ? line.start : dub ? dub.start : line.start;
      const end = lane.kind === "source" ? line.end : dub ? dub.end : line.end;
      if (end < from || start > to) continue;
      const x = start * px - left;
      const w = Math.max(2, (end - start) * px);
      ctx.fillStyle = lane.kind === "source" ? "#9ecae1" : colour(dub);
      ctx.globalAlpha = 0.45;
      ctx.fillRect(x, top + 2, w, LANE_H - 4);
      ctx.globalAlpha = 1;
      // The energy inside the block.
      const track = state.energy && state.energy.tracks[lane.kind === "source" ? "source" : state.lang];
      if (track) {
        ctx.fillStyle = lane.kind === "source" ? "#3182bd" : "#333";
        const first = Math.max(0, Math.floor(start * rate));
        const last = Math.min(track.length, Math.ceil(end * rate));
        for (let i = first; i < last; i++) {
          const h = (track[i] / 255) * (LANE_H - 6);
          ctx.fillRect(i / rate * px - left, top + LANE_H / 2 - h / 2, Math.max(1, px / rate - 0.5), h);
        }
      }
      if (state.selected === line.id) {
        ctx.strokeStyle = "#08306b";
        ctx.lineWidth = 2;
        ctx.strokeRect(x, top + 1, w, LANE_H - 2);
      }
    }
  });
}

function lineAt(event) {
  const canvas = $("timeline");
  const rect = canvas.getBoundingClientRect();
  const seconds = (event.clientX - rect.left + $("scroller").scrollLeft) / state.pxPerS;
  const lane = lanes()[Math.floor((event.clientY - rect.top) / LANE_H)];
  if (!lane) return null;
  return state.project.lines.find((line) => {
    const dub = line.dub[state.lang];
    const [start, end] = lane.kind === "dub" && dub ? [dub.start, dub.end] : [line.start, line.end];
    return line.speaker === lane.speaker && seconds >= start && seconds <= end;
  }) || null;
}

// -- the list of lines (virtualised) ---------------------------------------------------

function drawList() {
  const list = $("list");
  const lines = state.project.lines;
  $("list-spacer").style.height = `${lines.length * ROW_H}px`;
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
  const last = Math.min(lines.length, first + Math.ceil(list.clientHeight / ROW_H) + 10);
  const rows = $("rows");
  rows.style.top = `${first * ROW_H}px`;
  const labels = Object.fromEntries(speakers().map((s) => [s.id, s.label]));
  rows.replaceChildren(...lines.slice(first, last).map((line) => {
    const dub = line.dub[state.lang];
    const row = document.createElement("div");
    row.className = "row" + (line.id === state.selected ? " selected" : "")
      + (dub && (dub.flagged || dub.violations.length) ? " flagged" : "");
    row.dataset.id = line.id;
    for (const text of [line.id, clock(line.start), labels[line.speaker] || line.speaker,
      line.text, dub ? dub.text : "", dub ? `${dub.speed.toFixed(2)}×` : ""]) {
      const cell = document.createElement("span");
      cell.textContent = text;
      row.append(cell);
    }
    row.addEventListener("click", () => select(line.id, true));
    return row;
  }));
}

// -- the selected line -----------------------------------------------------------------

function select(id, scrollTimeline) {
  state.selected = id;
  const line = state.project.lines.find((l) => l.id === id);
  const dub = line.dub[state.lang];
  const detail = $("detail");
  detail.replaceChildren();
  const title = document.createElement("h2");
  title.textContent = `${line.id} · ${clock(line.start)}–${clock(line.end)}`;
  const facts = document.createElement("dl");
  const add = (name, value, cls) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (cls) dd.className = cls;
    facts.append(dt, dd);
  };
  add("Speaker", (speakers().find((s) => s.id === line.speaker) || {}).label || line.speaker);
  add("Source", line.text);
  if (dub) {
    add("Dub", dub.text);
    add("Speed", `${dub.speed.toFixed(2)}× (${dub.status})`);
    add("Dub time", `${clock(dub.start)}–${clock(dub.end)}`);
    if (dub.cer !== null && dub.cer !== undefined) {
      add("Heard", `${dub.heard} (CER ${dub.cer.toFixed(2)}, ${dub.takes} take${dub.takes === 1 ? "" : "s"})`,
        dub.flagged ? "flag" : "");
    }
    if (dub.flagged) add("Check", "still unclear after every take", "flag");
    if (dub.violations.length) add("Timing", dub.violations.join(", "), "flag");
  }
  const buttons = document.createElement("p");
  buttons.className = "play";
  const button = (label, id, handler) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.id = id;
    b.addEventListener("click", handler);
    buttons.append(b);
  };
  button("▶ Source", "play-source", () => play("/audio/source", line.start - LEAD_S, line.end + LEAD_S));
  if (dub && dub.clip) {
    button("▶ Dub", "play-dub", () => play(`/audio/clip/${state.lang}/${line.id}`, 0, null));
    button("▶ Mix", "play-mix", () => play(`/audio/mix/${state.lang}`,
      Math.min(line.start, dub.start) - LEAD_S, Math.max(line.end, dub.end) + LEAD_S));
  }
  detail.append(title, facts, buttons);
  if (dub) detail.append(editor(line, dub));
  if (scrollTimeline) {
    const scroller = $("scroller");
    const x = line.start * state.pxPerS;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth - 40) {
      scroller.scrollLeft = Math.max(0, x - scroller.clientWidth / 3);
    }
  }
  drawTimeline();
  drawList();
}

// -- editing a line: a new translation, dubbed again in context; earlier takes ------------

function estimate(dub, text) {
  if (!dub.natural_s || !dub.slot_s || !dub.text.length) return "";
  const seconds = dub.natural_s * text.length / dub.text.length;
  return `about ${(seconds / dub.slot_s).toFixed(2)}× its slot`;
}

function post(url, body) {
  return send("POST", url, body);
}

function editor(line, dub) {
  const box = document.createElement("div");
  box.className = "editor";
  const text = document.createElement("textarea");
  text.id = "edit-text";
  text.rows = 3;
  text.value = dub.text;
  const hint = document.createElement("p");
  hint.id = "estimate";
  hint.className = "hint";
  hint.textContent = estimate(dub, dub.text);
  text.addEventListener("input", () => { hint.textContent = estimate(dub, text.value); });
  const redub = document.createElement("button");
  redub.id = "redub";
  redub.textContent = "Re-dub this line";
  const status = document.createElement("p");
  status.id = "edit-status";
  redub.addEventListener("click", () => change(`/api/lines/${line.id}/redub`,
    { lang: state.lang, text: text.value, version: state.project.version }, status, "Re-dubbing…"));
  const history = document.createElement("div");
  history.id = "takes";
  // Who says it, and when: the line given to another speaker, or moved a little.
  const who = document.createElement("select");
  who.id = "line-speaker";
  for (const speaker of speakers()) who.append(new Option(speaker.label, speaker.id, false, speaker.id === line.speaker));
  who.addEventListener("change", () => change(`/api/lines/${line.id}`,
    { speaker: who.value, version: state.project.version }, status, "Giving the line to another speaker…"));
  const nudge = (label, id, shift) => {
    const b = Object.assign(document.createElement("button"), { textContent: label, id });
    b.addEventListener("click", () => change(`/api/lines/${line.id}`,
      { shift_s: shift, version: state.project.version }, status, "Moving the line…"));
    return b;
  };
  const moves = document.createElement("p");
  moves.append("Speaker ", who, " Start ", nudge("◀ 0.1 s", "earlier", -0.1), " ", nudge("0.1 s ▶", "later", 0.1));
  box.append(text, hint, redub, status, moves, history);
  showTakes(line, history, status);
  return box;
}

async function change(url, body, status, doing) {
  document.querySelectorAll(".editor button, .editor select").forEach((b) => { b.disabled = true; });
  status.textContent = doing;
  try {
    state.project = await post(url, body);
    state.version = state.project.version;
    status.textContent = "";
    await load(true);
  } catch (error) {
    status.textContent = error.status === 409
      ? `Not saved: ${error.message} The line was reloaded.` : `Not done: ${error.message}`;
    if (error.status === 409) await load();
    const again = document.getElementById("edit-status");
    if (again && again !== status) again.textContent = status.textContent;
  } finally {
    document.querySelectorAll(".editor button, .editor select").forEach((b) => {
      b.disabled = document.body.classList.contains("read-only");
    });
  }
}

async function showTakes(line, box, status) {
  const taken = await getJSON(`/api/lines/${line.id}/takes?lang=${encodeURIComponent(state.lang)}`);
  if (!taken.length) return;
  const title = document.createElement("h3");
  title.textContent = "Earlier takes";
  const list = document.createElement("ol");
  taken.forEach((take, index) => {
    const item = document.createElement("li");
    item.className = "take";
    const words = document.createElement("span");
    words.textContent = take.text + (take.cer !== undefined && take.cer !== null ? ` (CER ${take.cer.toFixed(2)})` : "");
    const back = document.createElement("button");
    back.textContent = "Bring back";
    back.className = "restore";
    back.addEventListener("click", () => change(`/api/lines/${line.id}/restore`,
      { lang: state.lang, take: index, version: state.project.version }, status, "Bringing back…"));
    item.append(words, " ", back);
    list.append(item);
  });
  box.replaceChildren(title, list);
}

function play(url, from, to) {
  const player = $("player");
  const target = new URL(at(url), location.href).href;
  if (player.src !== target) player.src = target;
  state.stopAt = to;
  const start = () => {
    player.currentTime = Math.max(0, from);
    player.play().catch(() => {});
  };
  if (player.readyState >= 1) start();
  else player.addEventListener("loadedmetadata", start, { once: true });
  player.load && player.readyState < 1 && player.load();
}

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  if (state.stopAt !== null && player.currentTime >= state.stopAt) player.pause();
});

// -- loading, and a run that holds the project -------------------------------------------

async function load(fresh) {
  if (!fresh || !state.project) state.project = await getJSON("/api/project");
  $("source").textContent = state.project.source;
  const picker = $("language");
  if (!state.lang || !state.project.languages.includes(state.lang)) state.lang = state.project.languages[0];
  picker.replaceChildren(...state.project.languages.map((lang) => new Option(lang, lang, false, lang === state.lang)));
  const flagged = state.project.lines.filter((l) => l.dub[state.lang] && l.dub[state.lang].flagged).length;
  $("summary").textContent = `${state.project.lines.length} lines · ${speakers().length} speakers`
    + (flagged ? ` · ${flagged} flagged` : "");
  layoutTimeline();
  drawList();
  if (state.selected) select(state.selected, false);
  getJSON("/api/energy").then((energy) => { state.energy = energy; drawTimeline(); });
}

async function watch() {
  try {
    const status = await getJSON("/api/status");
    const banner = $("banner");
    banner.hidden = !status.locked;
    banner.textContent = status.locked
      ? "Another Octavia run is working on this project: the page is read-only until it ends." : "";
    document.body.classList.toggle("read-only", status.locked);
    document.querySelectorAll(".editor button, .editor select, .save-speaker, #save-subtitles, #export, #remix")
      .forEach((b) => { b.disabled = status.locked; });
    if (state.version !== null && status.version !== state.version && !status.locked) await load();
    state.version = status.version;
  } catch (error) { /* the server stopped: nothing to show */ }
}

$("language").addEventListener("change", (event) => {
  state.lang = event.target.value;
  layoutTimeline();
  drawList();
  if (state.selected) select(state.selected, false);
});
$("scroller").addEventListener("scroll", drawTimeline);
$("list").addEventListener("scroll", drawList);
$("timeline").addEventListener("click", (event) => {
  const line = lineAt(event);
  if (line) {
    select(line.id, false);
    const index = state.project.lines.indexOf(line);
    const list = $("list");
    if (index * ROW_H < list.scrollTop || index * ROW_H > list.scrollTop + list.clientHeight - ROW_H) {
      list.scrollTop = Math.max(0, index * ROW_H - list.clientHeight / 3);
    }
  }
});
const zoom = (factor) => {
  const scroller = $("scroller");
  const centre = (scroller.scrollLeft + scroller.clientWidth / 2) / state.pxPerS;
  state.pxPerS = Math.min(400, Math.max(0.5, state.pxPerS * factor));
  layoutTimeline();
  scroller.scrollLeft = centre * state.pxPerS - scroller.clientWidth / 2;
  drawTimeline();
};
$("zoom-in").addEventListener("click", () => zoom(1.5));
$("zoom-out").addEventListener("click", () => zoom(1 / 1.5));
$("scroller").addEventListener("wheel", (event) => {
  if (!event.ctrlKey) return;
  event.preventDefault();
  zoom(event.deltaY < 0 ? 1.25 : 0.8);
}, { passive: false });
window.addEventListener("resize", layoutTimeline);

// -- speakers, subtitles, export -----------------------------------------------------------

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    document.querySelectorAll(".panel").forEach((panel) => { panel.hidden = panel.id !== tab.dataset.panel; });
    if (tab.dataset.panel === "lines-panel") layoutTimeline();
    if (tab.dataset.panel === "speakers-panel") showSpeakers();
    if (tab.dataset.panel === "subtitles-panel") showSubtitles();
    if (tab.dataset.panel === "export-panel") showMix();
  });
}

async function send(method, url, body) {
  const response = await fetch(at(url), {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    const error = new Error(data.detail || data.error || String(response.status));
    error.status = response.status;
    throw error;
  }
  return data;
}

async function showSpeakers() {
  const choices = await getJSON(`/api/voices/${encodeURIComponent(state.lang)}`).catch(() => []);
  const list = Object.assign(document.createElement("datalist"), { id: "voice-choices" });
  list.append(...choices.map((voice) => new Option(voice, voice)));
  const rows = speakers().map((speaker) => {
    const tr = document.createElement("tr");
    tr.dataset.id = speaker.id;
    const count = state.project.lines.filter((l) => l.speaker === speaker.id).length;
    const label = Object.assign(document.createElement("input"), { value: speaker.label, className: "label" });
    const voice = Object.assign(document.createElement("input"), { value: speaker.voice || "", className: "voice", placeholder: "as dubbed" });
    voice.setAttribute("list", "voice-choices");
    const save = Object.assign(document.createElement("button"), { textContent: "Save", className: "save-speaker" });
    save.addEventListener("click", async () => {
      const status = $("speakers-status");
      status.textContent = "Saving (lines whose voice changes are spoken again)…";
      try {
        state.project = await send("POST", `/api/speakers/${speaker.id}`, {
          label: label.value, voice: voice.value, version: state.project.version,
        });
        state.version = state.project.version;
        status.textContent = "Saved.";
        await load(true);
        showSpeakers();
      } catch (error) {
        status.textContent = `Not saved: ${error.message}`;
        if (error.status === 409) { await load(); showSpeakers(); }
      }
    });
    const cells = [speaker.id, label, voice, String(count), save].map((content) => {
      const td = document.createElement("td");
      td.append(content);
      return td;
    });
    tr.append(...cells);
    return tr;
  });
  document.querySelector("#speakers tbody").replaceChildren(...rows);
  const previous = $("voice-choices");
  if (previous) previous.remove();
  document.body.append(list);
}

const CUES_PER_PAGE = 100;
const subs = { cues: [], rules: null, page: 0, version: null };

function reading(cue) {
  const text = cue.text.replace(/\n/g, "");
  const seconds = cue.end_s - cue.start_s;
  const cps = text.length / Math.max(seconds, 1e-6);
  const rules = subs.rules;
  const problems = [];
  if (cps > rules.max_cps + 0.01) problems.push(`${cps.toFixed(1)} chars/s > ${rules.max_cps}`);
  const lines = cue.text.split("\n");
  if (lines.length > rules.max_lines) problems.push(`${lines.length} lines`);
  if (lines.some((line) => line.length > rules.max_line_chars)) problems.push(`line over ${rules.max_line_chars} chars`);
  if (seconds < rules.min_duration_s) problems.push(`shorter than ${rules.min_duration_s} s`);
  if (seconds > rules.max_duration_s) problems.push(`longer than ${rules.max_duration_s} s`);
  return { text: problems.length ? problems.join("; ") : `${cps.toFixed(1)} chars/s`, bad: problems.length > 0 };
}

async function showSubtitles() {
  const data = await getJSON(`/api/subtitles/${encodeURIComponent(state.lang)}`);
  Object.assign(subs, { cues: data.cues, rules: data.rules, version: data.version });
  const r = data.rules;
  $("rules").textContent = `Reading rules: at most ${r.max_cps} characters a second, ${r.max_lines} lines of `
    + `${r.max_line_chars} characters, ${r.min_duration_s}-${r.max_duration_s} s on screen.`;
  drawCues();
}

function drawCues() {
  const first = subs.page * CUES_PER_PAGE;
  const rows = subs.cues.slice(first, first + CUES_PER_PAGE).map((cue, offset) => {
    const tr = document.createElement("tr");
    const number = document.createElement("td");
    number.textContent = String(first + offset + 1);
    const field = (key) => {
      const input = Object.assign(document.createElement("input"), { type: "number", step: "0.01", value: cue[key].toFixed(2), className: key });
      input.addEventListener("input", () => { cue[key] = parseFloat(input.value); check(); });
      const td = document.createElement("td");
      td.append(input);
      return td;
    };
    const text = Object.assign(document.createElement("textarea"), { rows: 2, value: cue.text, className: "cue-text" });
    const note = document.createElement("td");
    const check = () => { const r = reading(cue); note.textContent = r.text; note.className = r.bad ? "bad" : ""; };
    text.addEventListener("input", () => { cue.text = text.value; check(); });
    const textCell = document.createElement("td");
    textCell.append(text);
    tr.append(number, field("start_s"), field("end_s"), textCell, note);
    check();
    return tr;
  });
  document.querySelector("#cues tbody").replaceChildren(...rows);
  const pages = Math.ceil(subs.cues.length / CUES_PER_PAGE);
  const pager = $("pager");
  pager.replaceChildren();
  if (pages > 1) {
    for (let page = 0; page < pages; page++) {
      const b = Object.assign(document.createElement("button"), { textContent: String(page + 1), disabled: page === subs.page });
      b.addEventListener("click", () => { subs.page = page; drawCues(); });
      pager.append(b);
    }
  }
}

$("save-subtitles").addEventListener("click", async () => {
  const status = $("subtitles-status");
  try {
    state.project = await send("PUT", `/api/subtitles/${encodeURIComponent(state.lang)}`,
      { cues: subs.cues, version: state.project.version });
    state.version = state.project.version;
    status.textContent = "Saved: the export writes these.";
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
    if (error.status === 409) { await load(); await showSubtitles(); }
  }
});

$("remix").addEventListener("click", async () => {
  const status = $("remix-status");
  status.textContent = "Mixing…";
  try {
    state.project = await send("POST", "/api/remix", {
      ducking: $("ducking").value, loudness: $("loudness").value, version: state.project.version,
    });
    state.version = state.project.version;
    status.textContent = "Mixed.";
    await load(true);
  } catch (error) {
    status.textContent = `Not mixed: ${error.message}`;
  }
});

function showMix() {
  const mix = (state.project.mix || {})[state.lang];
  if (!mix) return;
  $("ducking").value = mix.ducking;
  $("loudness").value = mix.loudness;
  $("remix-status").textContent = mix.separated ? ""
    : "No source separation: the original voices are ducked deeply whatever the preset.";
}

$("export").addEventListener("click", async () => {
  const status = $("export-status");
  $("export").disabled = true;
  status.textContent = "Exporting…";
  const watching = setInterval(async () => {
    const { message } = await getJSON("/api/progress").catch(() => ({ message: "" }));
    if (message && status.textContent.startsWith("Exporting")) status.textContent = `Exporting… ${message}`;
  }, 500);
  try {
    const result = await send("POST", "/api/export", { force: $("force").checked });
    state.project = result;
    state.version = result.version;
    status.textContent = "Written:";
    $("exported").replaceChildren(...result.written.map((path) => {
      const li = document.createElement("li");
      li.textContent = path;
      return li;
    }));
  } catch (error) {
    status.textContent = `Not exported: ${error.message}`;
  } finally {
    clearInterval(watching);
    $("export").disabled = document.body.classList.contains("read-only");
  }
});

load().then(watch);
setInterval(watch, 3000);
