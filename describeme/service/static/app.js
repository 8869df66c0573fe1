// describeme search page. Builds every node with textContent (never innerHTML): stream ids,
// sentences and queries are user or camera data and must not become markup.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const token = $("token").value.trim() || sessionStorage.getItem("describeme-token") || "";
  if ($("token").value.trim()) sessionStorage.setItem("describeme-token", token);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401) $("token-box").open = true;
  const body = await response.json().catch(() => ({ error: "server sent no JSON" }));
  if (!response.ok) throw new Error(body.error || "request failed (" + response.status + ")");
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "-";
}

// "upper-clothes color=red" -> "upper-clothes"; "NOT hat" -> "hat"
function partOf(label) {
  return label.replace(/^NOT /, "").split(" ")[0];
}

function partChip(part, matched, failed) {
  const values = [part.color, part.size, part.pattern].filter((v) => v && v !== "none");
  const chip = el("span", "part", part.part + (values.length ? ": " + values.join(", ") : ""));
  // A part with any failed condition is marked failed, even if another condition held.
  if (failed.has(part.part)) chip.classList.add("failed");
  else if (matched.has(part.part)) chip.classList.add("matched");
  return chip;
}

function card(hit) {
  const node = el("article", "card " + (hit.strict ? "strict" : "relaxed"));
  node.dataset.trackId = hit.id;
  const img = el("img", "thumb");
  img.alt = "thumbnail of " + hit.id;
  if (hit.thumbnail_jpeg_base64) img.src = "data:image/jpeg;base64," + hit.thumbnail_jpeg_base64;
  node.append(img);
  const body = el("div", "card-body");
  body.append(el("p", "sentence", hit.sentence || "(no description)"));
  const matched = new Set(hit.matched.map(partOf));
  const failed = new Set(hit.failed.map(partOf));
  const parts = el("div", "parts");
  for (const part of hit.parts) parts.append(partChip(part, matched, failed));
  body.append(parts);
  body.append(el("div", "meta camera", "camera " + hit.stream_id + " · track " + hit.track_id));
  body.append(el("div", "meta time", when(hit.first_seen_time) + " – " + when(hit.last_seen_time)));
  if (hit.failed.length) {
    // A failed value the model still gave some of its votes to shows that share.
    const shares = hit.near_misses || {};
    const failedText = hit.failed.map((label) =>
      label in shares ? label + " (runner-up " + Math.round(100 * shares[label]) + "%)" : label);
    body.append(el("div", "meta failed-list", "not matched: " + failedText.join("; ")));
  }
  const link = el("a", "history-link", "history");
  link.href = "#track=" + encodeURIComponent(hit.id);
  body.append(link);
  node.append(body);
  return node;
}

async function search(event) {
  if (event) event.preventDefault();
  const q = $("query").value.trim();
  showError("");
  $("results").replaceChildren();
  $("explanation").replaceChildren();
  $("track").hidden = true;
  $("results").hidden = false;
  if (location.hash) history.replaceState(null, "", location.pathname);
  if (!q) { showError("Type a description first, e.g. 'red shirt and blue jeans'."); return; }
  $("status").textContent = "searching…";
  try {
    const result = await api("/search?limit=24&q=" + encodeURIComponent(q));
    for (const line of result.explanation || []) $("explanation").append(el("li", null, line));
    for (const hit of result.hits) $("results").append(card(hit));
    $("status").textContent = result.hits.length
      ? result.strict_total + " strict matches; showing " + result.hits.length
      : "no stored track matches";
  } catch (error) {
    $("status").textContent = "";
    showError(error.message);
  }
}

function historyTable(events) {
  const table = el("table", "events");
  const head = el("tr");
  for (const name of ["frame", "pts (s)", "event", "detail"]) head.append(el("th", null, name));
  table.append(head);
  for (const e of events) {
    const row = el("tr");
    for (const value of [e.frame_index, e.pts, e.kind, e.detail]) row.append(el("td", null, value));
    table.append(row);
  }
  return table;
}

// Fetched (not an <img src>) so the bearer token goes with it; shown through a blob: URL.
async function loadThumbnail(url, img) {
  const response = await fetch(url, { headers: headers() });
  if (response.ok) img.src = URL.createObjectURL(await response.blob());
}

async function showTrack(ref) {
  showError("");
  try {
    const track = await api("/tracks/" + encodeURIComponent(ref));
    const body = $("track-body");
    body.replaceChildren();
    if (track.thumbnail_url) {
      const img = el("img", "track-thumb");
      img.alt = "thumbnail of " + track.id;
      body.append(img);
      loadThumbnail(track.thumbnail_url, img);
    }
    body.append(el("h2", null, "Track " + track.track_id + " on camera " + track.stream_id));
    body.append(el("p", "sentence", track.sentence));
    body.append(el("p", "meta", "seen " + when(track.first_seen_time) + " – " + when(track.last_seen_time) +
      " (" + track.num_observations + " observations, " + (track.final ? "ended" : "live") + ")"));
    const parts = el("div", "parts");
    for (const part of track.parts) parts.append(partChip(part, new Set(), new Set()));
    body.append(parts);
    body.append(el("h3", null, "History (" + track.events.length + " events)"));
    body.append(historyTable(track.events));
    $("results").hidden = true;
    $("track").hidden = false;
  } catch (error) {
    showError(error.message);
  }
}

function route() {
  const match = location.hash.match(/^#track=(.+)$/);
  if (match) { showTrack(decodeURIComponent(match[1])); return; }
  $("track").hidden = true;
  $("results").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", search);
  $("track-close").addEventListener("click", () => { location.hash = ""; });
  window.addEventListener("hashchange", route);
  route();
});
