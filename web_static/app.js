/* DTU Gateway web app: setup, dashboard, settings, login. Vanilla JS, no
   external resources; talks only to this gateway's /api. */
"use strict";
(function () {

// ---- helpers ------------------------------------------------------------------

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.prototype.slice.call((root || document).querySelectorAll(sel));

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    const v = attrs[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "value") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat(3)) {
    if (c !== null && c !== undefined && c !== false) e.append(c.nodeType ? c : String(c));
  }
  return e;
}

function fmt(v, d) {
  return typeof v === "number" && isFinite(v) ? v.toFixed(d) : "–";
}

function pick(obj, path) {
  for (const p of path.split(".")) obj = obj === null || obj === undefined ? undefined : obj[p];
  return obj;
}

function pad(n) { return (n < 10 ? "0" : "") + n; }

// Gateway-local clock time of a Unix time (the gateway's time zone, not the browser's).
function clock(t, withSec) {
  const d = new Date((t + S.tzOff) * 1000);
  return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + (withSec ? ":" + pad(d.getUTCSeconds()) : "");
}

function stamp(t) {
  const d = new Date((t + S.tzOff) * 1000), now = new Date((S.now + S.tzOff) * 1000);
  const day = d.getUTCFullYear() === now.getUTCFullYear() && d.getUTCMonth() === now.getUTCMonth() &&
    d.getUTCDate() === now.getUTCDate();
  return (day ? "" : pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " ") + clock(t, day);
}

function show(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

function banner(text) { show($("#banner"), text); }

// Safe mode (gateway/safemode.py): why, from /api/info. A plain fetch, so a
// locked gateway just shows nothing until the login (which asks again).
async function loadSafeMode() {
  let m;
  try {
    const r = await fetch("/api/info", { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) return;
    m = (await r.json()).safeMode || {};
  } catch (e) {
    return;                                  // no answer: the views say so
  }
  $("#safe-reason").textContent = m.active ? m.reason || "unknown" : "";
  $("#safe-link").href = "/safe-mode";       // set here: index.html refers to its assets only
  $("#safe-banner").hidden = !m.active;
}

// How often the dashboard asks for /api/data (ms): every 5 s, or ?poll=N seconds (1..60).
const POLL = Math.min(60, Math.max(1, +new URLSearchParams(location.search).get("poll") || 5)) * 1000;

// ---- state and API --------------------------------------------------------------

const S = {
  session: { auth_required: false, logged_in: false, protect_read: false },
  csrf: sessionStorage.getItem("csrf") || "",
  view: "", after: "dashboard",
  data: null, tzOff: 0, now: Date.now() / 1000,
  config: null, timer: 0, evAt: 0, evKey: "", histAt: 0, otaTimer: 0, otaWait: false,
  limitDirty: false, built: false, setupInit: false,
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || (status ? "HTTP " + status : "the gateway does not answer"));
    this.status = status;
    this.field = body ? body.field : undefined;
    this.body = body;
  }
}

async function api(path, body) {
  const opt = { method: body === undefined ? "GET" : "POST", headers: {}, credentials: "same-origin",
    cache: "no-store" };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    if (S.csrf) opt.headers["X-CSRF-Token"] = S.csrf;
    opt.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opt);
  } catch (e) {
    throw new ApiError(0, null);
  }
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  if (r.ok) return j || {};
  if ((r.status === 401 || r.status === 403) && path !== "/api/login") loggedOut(j);
  throw new ApiError(r.status, j);
}

// ---- session ----------------------------------------------------------------------

async function loadSession() {
  try {
    S.session = await api("/api/session");
  } catch (e) {
    if (e.status !== 404) throw e;
    S.session = { auth_required: false, logged_in: false, protect_read: false };   // no access control
  }
  setCsrf(S.session.logged_in ? S.session.csrf || S.csrf : "");   // the token again after a reload
  authButtons();
}

function setCsrf(t) {
  S.csrf = t || "";
  if (S.csrf) sessionStorage.setItem("csrf", S.csrf); else sessionStorage.removeItem("csrf");
}

function authButtons() {
  $("#login-btn").hidden = !S.session.auth_required || S.session.logged_in;
  $("#logout-btn").hidden = !S.session.logged_in;
}

function loggedOut(body) {
  S.session.auth_required = true;
  S.session.logged_in = false;
  setCsrf("");
  authButtons();
  if (S.view !== "login") {
    S.after = S.view || "dashboard";
    $("#login-why").textContent = (body && body.error) || "Please log in.";
    go("login");
  }
}

async function login(ev) {
  ev.preventDefault();
  const err = $("#login-err"), btn = $("#login-submit");
  show(err, "");
  btn.disabled = true;
  try {
    const r = await api("/api/login", { password: $("#l-pass").value });
    setCsrf(r.csrf);
    S.session.logged_in = true;
    $("#l-pass").value = "";
    authButtons();
    go(S.after && S.after !== "login" ? S.after : "dashboard");
    loadSafeMode();
  } catch (e) {
    show(err, e.status === 401 ? "Wrong password." : e.message);
    $("#l-pass").select();
  } finally {
    btn.disabled = false;
  }
}

async function logout() {
  try { await api("/api/logout", {}); } catch (e) { /* logged out anyway */ }
  setCsrf("");
  S.session.logged_in = false;
  authButtons();
  if (S.session.protect_read || S.view === "settings") go("login"); else authButtons();
}

// ---- views ------------------------------------------------------------------------

const VIEWS = { dashboard: enterDashboard, setup: enterSetup, settings: enterSettings, login: enterLogin };

function go(v) {
  if (location.hash === "#" + v) route(); else location.hash = v;
}

function route() {
  let v = location.hash.slice(1);
  if (!VIEWS[v]) v = "dashboard";
  const ss = S.session;
  if (ss.auth_required && !ss.logged_in && v !== "login" &&
      (v === "settings" || (ss.protect_read && v !== "setup"))) {
    S.after = v;
    v = "login";
    history.replaceState(null, "", "#login");
  }
  const first = !S.view;
  S.view = v;
  for (const k in VIEWS) $("#view-" + k).hidden = k !== v;
  for (const a of $$("nav a")) {
    if (a.dataset.view === v) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = "DTU Gateway · " + v.charAt(0).toUpperCase() + v.slice(1);
  clearTimeout(S.timer);
  VIEWS[v]();
  if (!first) $("#h-" + v).focus();
}

// ---- dashboard --------------------------------------------------------------------

const CONN = ["offline", "connected", "cloud pause", "reconnecting", "DTU rebooting", "connection error",
  "stopped", "inverter restarting", "asleep for the night"];
const NIGHT = 8;
const ERRS = ["", "the DTU's clock is not set", "the DTU's clock is off", "readings are frozen",
  "no answer for a long time"];
const PORT_ROWS = [["v", "Voltage", "V", 1], ["c", "Current", "A", 2], ["dE", "Today", "kWh", 3],
  ["tE", "Total", "kWh", 3]];
const GRID_ROWS = [["v", "Voltage", "V", 1], ["c", "Current", "A", 2], ["f", "Frequency", "Hz", 2],
  ["dE", "Today", "kWh", 3], ["tE", "Total", "kWh", 3]];
// Event kinds that tell why the DTU connection is not fine.
const REASON_KINDS = ["dtu", "recovery", "wifi", "write", "config", "health"];

function val(key, d) { return h("span", { "data-k": key, "data-d": d }, "–"); }

function valueCard(key, title, rows) {
  return h("div", { class: "card", "data-card": key },
    h("h2", null, title),
    h("p", { class: "big" }, val(key + ".p", 1), " ", h("small", null, "W")),
    h("dl", { class: "vals" }, rows.map(r => [h("dt", null, r[1]), h("dd", null, val(key + "." + r[0], r[3]), " " + r[2])])));
}

function buildCards() {
  const inv = h("div", { class: "card", "data-card": "inverter" },
    h("h2", null, "Inverter"),
    h("p", { class: "big" }, val("inverter.temp", 1), " ", h("small", null, "°C")),
    h("dl", { class: "vals" },
      h("dt", null, "State"), h("dd", { id: "inv-active" }, "–"),
      h("dt", null, "Limit"), h("dd", { id: "inv-limit" }, "–")));
  $("#cards").append(valueCard("grid", "Grid (AC)", GRID_ROWS), valueCard("pv0", "Panel 1", PORT_ROWS),
    valueCard("pv1", "Panel 2", PORT_ROWS), inv);
  S.built = true;
}

function enterDashboard() {
  if (!S.built) buildCards();
  S.evAt = S.histAt = S.alAt = 0;
  tick();
}

async function tick() {
  clearTimeout(S.timer);
  if (S.view !== "dashboard") return;
  if (document.hidden) { S.timer = setTimeout(tick, POLL); return; }
  try {
    const d = await api("/api/data");
    S.data = d;
    S.tzOff = d.localtime - d.ntpStamp;
    S.now = d.ntpStamp;
    banner("");
    renderData(d);
    const key = [d.dtuConnState, d.dtuErrorState, d.inverter.pending, d.lastResponse].join();
    if (key !== S.evKey || Date.now() - S.evAt > 30000) {
      S.evKey = key;
      loadEvents(d);
    }
    if (Date.now() - S.histAt > 60000) loadHistory();
    if (d.inverter.warnings !== S.alarmN || Date.now() - S.alAt > 60000) loadAlarms(d.inverter.warnings);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) banner("No answer from the gateway (" + e.message + "). Retrying…");
  }
  if (S.view === "dashboard") S.timer = setTimeout(tick, POLL);
}

function renderData(d) {
  for (const el of $$("[data-k]", $("#cards"))) {
    el.textContent = fmt(pick(d, el.dataset.k), +el.dataset.d);
  }
  const inv = d.inverter, dtu = d.dtu || {};
  $("#inv-active").textContent = inv.active === 0 ? "off" : "on";
  $("#inv-limit").textContent = inv.pLim + " %";
  $("#dtu-rssi").textContent = dtu.rssi === undefined ? "–" : dtu.rssi + (dtu.rssi < 0 ? " dBm" : " %");
  $("#dtu-serial").textContent = dtu.serial || "–";
  $("#dtu-version").textContent = (dtu.version || "–") + (dtu.encrypted ? " (encrypted)" : "");
  renderStatus(d);
  renderLimit(d);
}

function renderStatus(d) {
  const c = d.dtuConnState, er = d.dtuErrorState, fresh = d.inverter.uptodate === 1;
  const st = $("#status");
  st.dataset.conn = c;
  st.dataset.err = er;
  st.dataset.last = d.lastResponse;
  $("#st-conn").textContent = "DTU " + (CONN[c] || "state " + c);
  $("#st-err").textContent = er ? "· " + (ERRS[er] || "error " + er) : "";
  // night is no fault: the plain grey dot
  $("#st-dot").className = "dot " + (c === NIGHT ? "" : c === 1 && !er && fresh ? "ok" :
    c === 0 || c === 5 || c === 6 || er ? "bad" : "warn");
  const last = d.age >= 0 ? d.ntpStamp - d.age : 0;
  $("#st-age").textContent = last ? "Data from " + clock(last, true) + (c === NIGHT ?
    " (the totals are kept until the morning)" : fresh ? "" : " (stale: the DTU has not answered since)") :
    c === NIGHT ? "No data from the DTU since the gateway started: it is asleep until the morning." :
    "No data from the DTU yet.";
  renderReason();
}

function renderReason() {
  const d = S.data, el = $("#st-reason");
  if (!d) return;
  const c = d.dtuConnState;
  let text = "";
  if (c === 2) {
    text = "The DTU is uploading to the Hoymiles cloud; the gateway waits until it is done.";
  } else if (c === NIGHT) {
    text = "The panels power the DTU: it went off the network after the dusk. The gateway looks for it " +
      "every few minutes and shows it again with the first answer in the morning.";
  } else if (c !== 1 || d.dtuErrorState || d.inverter.uptodate !== 1) {
    const e = (S.events || []).find(e => REASON_KINDS.indexOf(e.kind) >= 0 &&
      (e.level !== "info" || e.kind === "recovery" || c === 4 || c === 7));
    if (e) text = e.msg + (e.count > 1 ? " (" + e.count + "×)" : "") + " · " + stamp(e.t);
  }
  el.textContent = text;
  el.hidden = !text;
}

async function loadEvents(d) {
  S.evAt = Date.now();
  try {
    S.events = (await api("/api/events")).events || [];
  } catch (e) {
    return;
  }
  const ul = $("#events");
  ul.replaceChildren(...S.events.slice(0, 8).map(e => h("li", { class: e.level },
    h("time", null, stamp(e.t)), h("span", null, e.msg + (e.count > 1 ? " (" + e.count + "×)" : "")))));
  if (!S.events.length) ul.append(h("li", null, "No events yet."));
  renderReason();
}

// ---- power limit ------------------------------------------------------------------

function renderLimit(d) {
  const inv = d.inverter, el = $("#limit-state");
  if (!S.limitDirty && document.activeElement !== $("#limit-num")) {
    const want = Math.max(0, Math.min(100, inv.pLimSet));
    $("#limit-num").value = want;
    $("#limit-range").value = want;
  }
  if (inv.pending) {
    el.dataset.state = "pending";
    el.textContent = "⏳ Pending: " + inv.pLimSet + " % waits for the DTU (writes are at least 31 s apart). " +
      "Now applied: " + inv.pLim + " %.";
  } else {
    el.dataset.state = "applied";
    el.textContent = "✓ Applied: " + inv.pLim + " %" + (inv.active === 0 ? " (the inverter is off)" : "") + ".";
  }
  el.dataset.limit = inv.pending ? inv.pLimSet : inv.pLim;
}

function limitInput(ev) {
  S.limitDirty = true;
  const other = ev.target.id === "limit-num" ? "#limit-range" : "#limit-num";
  $(other).value = ev.target.value;
  show($("#limit-err"), "");
}

async function setLimit(ev) {
  ev.preventDefault();
  const raw = $("#limit-num").value.trim(), v = Number(raw), err = $("#limit-err");
  if (raw === "" || !Number.isInteger(v) || v < 0 || v > 100) {
    show(err, "Enter a whole number from 0 to 100.");
    return;
  }
  if (v === 0 && !confirm("A limit of 0 % switches the inverter off. Continue?")) return;
  $("#limit-set").disabled = true;
  try {
    const r = await api("/api/power-limit", { limit: v });
    S.limitDirty = false;
    if (S.data) {
      S.data.inverter.pLimSet = r.limit;
      S.data.inverter.pending = r.pending ? 1 : 0;
      renderLimit(S.data);
    }
    tick();
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) show(err, e.message);
  } finally {
    $("#limit-set").disabled = false;
  }
}

async function queue(path, question, done) {
  if (!confirm(question)) return;
  try {
    await api(path, {});
    banner(done);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) banner(e.message);
  }
}

// ---- chart of today's power ---------------------------------------------------------

function niceMax(v) {
  if (!(v > 0)) return 100;
  const mag = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

// The inverter's warnings (/api/alarms): active ones first, then the recently
// ended; times come as ISO strings in the gateway's zone and are shown as they are.
async function loadAlarms(n) {
  S.alAt = Date.now();
  let a;
  try {
    a = await api("/api/alarms");
  } catch (e) {
    return;
  }
  S.alarmN = n;
  const when = iso => iso ? (iso.slice(0, 10) === new Date((S.now + S.tzOff) * 1000).toISOString().slice(0, 10) ?
    "" : iso.slice(5, 10) + " ") + iso.slice(11, 16) : "";
  const item = (w, on) => h("li", { class: on ? "warn" : "", "data-code": w.code, "data-active": on ? "1" : "0" },
    h("time", null, when(w.start) + (on ? "" : "–" + when(w.end))),
    h("span", null, w.code + " " + w.text + (w.count > 1 ? " (" + w.count + "×)" : "") + (on ? " · active" : "")));
  const ul = $("#alarms");
  ul.replaceChildren(...a.active.map(w => item(w, true)), ...a.ended.slice(0, 8).map(w => item(w, false)));
  if (!a.active.length && !a.ended.length) ul.append(h("li", null, a.read ? "No warnings." : "Not read yet."));
  $("#alarms-count").textContent = a.active.length ? "(" + a.active.length + " active)" : "";
}

async function loadHistory() {
  S.histAt = Date.now();
  try {
    drawChart(await api("/api/history"));
  } catch (e) {
    if (e.status === 404) $("#chart-note").textContent = "This gateway keeps no history.";
  }
}

function drawChart(hist) {
  S.hist = hist;
  const el = $("#chart");
  // drawn at the box's own width, so the 12 px labels stay 12 px on a phone
  const W = Math.max(260, Math.round(el.clientWidth) || 600), H = 200, L = 50, R = 22, T = 10, B = 24;
  const step = hist.step || 300, n = Math.round(86400 / step), p = hist.power || [];
  let max = 0, peak = -1, count = 0;
  p.forEach((v, i) => {
    if (typeof v !== "number") return;
    count++;
    if (v > max || peak < 0) { max = v; peak = i; }
  });
  const top = niceMax(max);
  const x = i => L + (i + 0.5) * (W - L - R) / n;
  const y = v => T + (H - T - B) * (1 - Math.max(0, v) / top);
  const f = v => v.toFixed(1);
  let line = "", area = "", dots = "", seg = [];
  const flush = () => {
    if (seg.length === 1) dots += '<circle class="line" r="2.5" cx="' + f(x(seg[0][0])) + '" cy="' + f(y(seg[0][1])) + '"/>';
    if (seg.length > 1) {
      const pts = seg.map(s => f(x(s[0])) + " " + f(y(s[1]))).join("L");
      line += "M" + pts;
      area += "M" + f(x(seg[0][0])) + " " + f(y(0)) + "L" + pts + "L" + f(x(seg[seg.length - 1][0])) + " " + f(y(0)) + "Z";
    }
    seg = [];
  };
  p.forEach((v, i) => { if (typeof v === "number") seg.push([i, v]); else flush(); });
  flush();
  let grid = "";
  for (const g of [0, top / 2, top]) {
    grid += '<line class="axis" x1="' + L + '" x2="' + (W - R) + '" y1="' + f(y(g)) + '" y2="' + f(y(g)) + '"/>' +
      '<text x="' + (L - 6) + '" y="' + f(y(g) + 4) + '" text-anchor="end">' + Math.round(g) + " W</text>";
  }
  for (let hr = 0; hr <= 24; hr += 6) {
    grid += '<text x="' + f(L + hr / 24 * (W - L - R)) + '" y="' + (H - 6) + '" text-anchor="middle">' + pad(hr) + ":00</text>";
  }
  el.innerHTML = '<svg viewBox="0 0 ' + W + " " + H + '" aria-hidden="true">' + grid +
    '<path class="area" d="' + area + '"/><path class="line" d="' + line + '"/>' + dots +
    '<line class="cursor" id="cur" y1="' + T + '" y2="' + (H - B) + '" visibility="hidden"/>' +
    '<text id="cur-t" y="' + (T + 12) + '" visibility="hidden"></text></svg>';
  el.dataset.points = count;
  const when = i => { const m = Math.round(i * step / 60); return pad(Math.floor(m / 60)) + ":" + pad(m % 60); };
  el.setAttribute("aria-label", count ? "Power today: " + count + " readings, peak " + Math.round(max) +
    " W at " + when(peak) : "Power today: no readings yet");
  $("#chart-note").textContent = count ? "Peak " + Math.round(max) + " W at " + when(peak) +
    ". One point per " + Math.round(step / 60) + " minutes since midnight." : "No readings today yet.";
  const svg = $("svg", el), cur = $("#cur", el), curT = $("#cur-t", el);
  const move = ev => {
    const box = svg.getBoundingClientRect();
    const i = Math.floor(((ev.clientX - box.left) * W / box.width - L) / (W - L - R) * n);
    if (i < 0 || i >= n) return;
    const v = p[i];
    cur.setAttribute("x1", f(x(i)));
    cur.setAttribute("x2", f(x(i)));
    curT.setAttribute("x", f(Math.min(x(i) + 4, W - 110)));
    curT.textContent = when(i) + "  " + (typeof v === "number" ? Math.round(v) + " W" : "no data");
    cur.setAttribute("visibility", "visible");
    curT.setAttribute("visibility", "visible");
  };
  svg.addEventListener("pointermove", move);
  svg.addEventListener("pointerdown", move);
  svg.addEventListener("pointerleave", () => {
    cur.setAttribute("visibility", "hidden");
    curT.setAttribute("visibility", "hidden");
  });
}

// ---- setup ----------------------------------------------------------------------------

function bars(pct) {
  const n = pct >= 75 ? 4 : pct >= 50 ? 3 : pct >= 25 ? 2 : 1;
  return h("span", { class: "bars", "aria-hidden": "true" },
    [1, 2, 3, 4].map(i => h("i", { class: i <= n ? "on" : "", style: "height:" + (3 + i * 3) + "px" })));
}

async function scan() {
  const state = $("#scan-state"), btn = $("#scan-btn");
  state.textContent = "Scanning…";
  btn.disabled = true;
  try {
    const r = await api("/api/wifi/scan");
    const nets = (r.networks || []).slice().sort((a, b) => b.rssi - a.rssi);
    const cur = $("#s-ssid").value;
    $("#nets").replaceChildren(...nets.map((n, i) => h("label", { class: "net" },
      h("input", { type: "radio", name: "net", value: n.name, checked: n.name === cur,
        onchange: () => { $("#s-ssid").value = n.name; $("#s-wpass").focus(); } }),
      h("span", { class: "nm" }, h("span", { class: "name" }, n.name),
        h("span", { class: "meta" }, (n.open ? "open · " : "") + n.wifi + " % · " + n.rssi + " dBm · ch " + n.chan)),
      bars(n.wifi))));
    state.textContent = nets.length ? nets.length + " networks in range, strongest first." :
      "No networks found. Type the name below or scan again.";
  } catch (e) {
    state.textContent = "Scan failed (" + e.message + "). Type the network name below.";
  } finally {
    btn.disabled = false;
  }
}

async function enterSetup() {
  if (S.setupInit) return;
  S.setupInit = true;
  $("#setup-form").hidden = false;
  $("#setup-progress").hidden = true;
  try {
    const c = await api("/api/config");
    $("#s-ssid").value = c["wifi.ssid"] || "";
    $("#s-dtu").value = c["dtu.host"] ? c["dtu.host"] + (c["dtu.port"] !== 10081 ? ":" + c["dtu.port"] : "") : "";
    S.setupCfg = c;
  } catch (e) { /* a fresh gateway: nothing to prefill */ }
  scan();
}

function clearErrors(form) {
  for (const el of $$(".field .err", form)) el.remove();
  for (const el of $$("[aria-invalid]", form)) {
    el.removeAttribute("aria-invalid");
    el.setAttribute("aria-describedby", (el.getAttribute("aria-describedby") || "").replace(/\s*err-\S+/g, "").trim());
  }
}

// The server's message next to the field it names; false if no such field.
function fieldError(form, key, msg) {
  const box = $$(".field", form).find(f => f.dataset.key === key);
  if (!box) return false;
  const input = $("input, select", box), id = "err-" + key.replace(/\W/g, "-");
  const p = h("p", { class: "err", id: id, role: "alert", "data-error-for": key }, msg);
  box.append(p);
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
  input.focus();
  return true;
}

async function saveSetup(ev) {
  ev.preventDefault();
  const form = $("#setup-form"), gen = $("#setup-err");
  clearErrors(form);
  show(gen, "");
  const ssid = $("#s-ssid").value.trim(), wpass = $("#s-wpass").value;
  const admin = $("#s-admin").value, dtu = $("#s-dtu").value.trim();
  if (!ssid) return fieldError(form, "wifi.ssid", "Choose a network or type its name.");
  if (admin !== $("#s-admin2").value) return fieldError(form, "admin.confirm", "The two passwords differ.");
  const old = S.setupCfg || {};
  const body = { "wifi.ssid": ssid };
  // An empty password keeps the saved one for the same network; a new network without one is open.
  body["wifi.password"] = wpass || (ssid === old["wifi.ssid"] && old["wifi.password_set"] ? null : "");
  const m = /^(.*?)(?::(\d+))?$/.exec(dtu);
  body["dtu.host"] = m[1];
  if (m[2]) body["dtu.port"] = +m[2];
  else if (dtu && old["dtu.port"] !== undefined && old["dtu.port"] !== 10081) body["dtu.port"] = 10081;
  if (admin) body["admin.password"] = admin;
  $("#setup-save").disabled = true;
  try {
    await api("/api/config", body);
  } catch (e) {
    $("#setup-save").disabled = false;
    if (e.status === 401 || e.status === 403) return;
    const key = e.field === "dtu.port" ? "dtu.host" : e.field;
    if (!key || !fieldError(form, key, e.message)) show(gen, e.message);
    return;
  }
  if (admin) {
    try {
      setCsrf((await api("/api/login", { password: admin })).csrf);
      S.session = { auth_required: true, logged_in: true, protect_read: S.session.protect_read };
    } catch (e) { S.session.auth_required = true; }
    authButtons();
  }
  S.setupInit = false;
  $("#s-wpass").value = $("#s-admin").value = $("#s-admin2").value = "";
  await watchJoin(ssid);
}

async function watchJoin(ssid) {
  const box = $("#setup-progress"), form = $("#setup-form");
  box.hidden = false;
  box.dataset.state = "joining";
  box.replaceChildren(h("p", null, "Saved. The gateway is joining “" + ssid + "”…"));
  const until = Date.now() + 60000;
  let w = null;
  while (Date.now() < until) {
    try {
      w = await api("/api/wifi");
    } catch (e) {
      if (e.status === 404) break;                    // no WiFi manager: nothing to wait for
      // the gateway may be switching networks: keep asking
    }
    if (w && w.connected && (!w.ssid || w.ssid === ssid)) {
      box.dataset.state = "connected";
      form.hidden = true;
      const url = "http://" + w.ip + "/";
      box.replaceChildren(h("p", { class: "okmsg" }, "✓ Connected to “" + ssid + "”."),
        h("p", null, "In that network the gateway is at ", h("a", { href: url }, url),
          ". Join it with this device and open the address; the gateway's own access point closes soon."),
        h("p", null, h("a", { href: "#dashboard" }, "Go to the dashboard")));
      $("#setup-save").disabled = false;
      return;
    }
    if (w && w.error && w.state !== "joining") break;   // a failed join: the AP is open again
    await new Promise(r => setTimeout(r, 1000));
  }
  $("#setup-save").disabled = false;
  if (w && w.error) {
    box.dataset.state = "failed";
    box.replaceChildren(h("p", { class: "err" }, "Could not join “" + ssid + "”: " + w.error),
      h("p", null, "The gateway's access point stays open. Check the network and password and try again."));
    form.hidden = false;
  } else if (!w) {
    box.dataset.state = "saved";
    box.replaceChildren(h("p", { class: "okmsg" }, "✓ Saved."), h("p", null, h("a", { href: "#dashboard" }, "Go to the dashboard")));
  } else {
    box.dataset.state = "waiting";
    box.replaceChildren(h("p", null, "Still joining “" + ssid + "”. If this page stops answering, the gateway " +
      "has left its access point: find it in your home network."));
  }
}

// ---- settings ---------------------------------------------------------------------------

const GROUPS = { wifi: "WiFi", dtu: "DTU", admin: "Access", timezone: "Time", mqtt: "MQTT", openhab: "openHAB", ota: "Updates" };
const LABELS = {
  "wifi.ssid": "Network name (SSID)", "wifi.password": "WiFi password",
  "dtu.host": "DTU address (IP or host name)", "dtu.port": "DTU port", "dtu.interval": "Poll interval (s)",
  "dtu.cloud_pause": "Pause while the DTU uploads to the cloud", "dtu.cloud_pause_seconds": "Cloud pause length (s)",
  "dtu.cloud_schedule": "Cloud upload schedule", "dtu.via": "Reach the DTU through",
  "dtu.ap_ssid": "DTU access point name", "dtu.ap_password": "DTU access point password",
  "admin.password": "Admin password", "admin.protect_read": "Also require it to read values",
  "timezone": "Time zone", "mqtt.enabled": "Publish to MQTT", "mqtt.host": "Broker address",
  "mqtt.port": "Broker port", "mqtt.user": "User", "mqtt.password": "Password", "mqtt.topic": "Topic",
  "mqtt.tls": "Use TLS", "mqtt.ha_discovery": "Home Assistant discovery", "openhab.enabled": "Push to openHAB",
  "openhab.host": "openHAB address", "openhab.port": "openHAB port", "openhab.item_prefix": "Item prefix",
  "ota.channel": "Update channel", "ota.repo": "Release repository", "ota.api": "Release API",
};
const CHOICES = {
  "dtu.cloud_schedule": [["5min", "every 5 min (current firmware)"], ["15min", "every 15 min (old firmware)"]],
  "dtu.via": [["lan", "the home network"], ["ap", "the DTU's own access point"]],
  "ota.channel": [["release", "releases"], ["snapshot", "snapshots"]],
};
const HINTS = {
  "dtu.interval": "31 s is safe for the DTU; less only for testing.",
  "timezone": "UTC, +01:00, or a POSIX rule such as CET-1CEST,M3.5.0,M10.5.0/3.",
  "mqtt.topic": "Empty: dtu-gateway/<chip id>.",
  "admin.password": "Protects settings and the power limit.",
};

function fieldId(key) { return "f-" + key.replace(/\W/g, "-"); }

function settingField(key, v, cfg) {
  const id = fieldId(key), label = LABELS[key] || key, hint = HINTS[key];
  const hintEl = hint ? h("p", { class: "hint", id: id + "-hint" }, hint) : null;
  const desc = hint ? id + "-hint" : null;
  if (typeof v === "boolean") {
    return h("div", { class: "field", "data-key": key },
      h("label", { class: "check" }, h("input", { type: "checkbox", id: id, name: key, checked: v, "aria-describedby": desc }), label),
      hintEl);
  }
  let input;
  const secret = (key + "_set") in cfg;
  if (CHOICES[key]) {
    input = h("select", { id: id, name: key, "aria-describedby": desc },
      CHOICES[key].map(c => h("option", { value: c[0] }, c[1])));
    input.value = v;
  } else if (secret) {
    const set = cfg[key + "_set"];
    input = h("input", { id: id, name: key, type: "password", autocomplete: "new-password", "data-secret": "1",
      placeholder: set ? "•••••• saved (leave empty to keep)" : "not set", "aria-describedby": desc });
  } else {
    input = h("input", { id: id, name: key, type: typeof v === "number" ? "number" : "text", value: String(v),
      autocomplete: "off", autocapitalize: "none", spellcheck: "false", "aria-describedby": desc });
    if (typeof v === "number") input.setAttribute("inputmode", "numeric");
  }
  input.addEventListener("input", () => {
    const e = $(".err", input.parentNode);
    if (e) e.remove();
    input.removeAttribute("aria-invalid");
  });
  return h("div", { class: "field", "data-key": key }, h("label", { for: id }, label), input, hintEl,
    secret && cfg[key + "_set"] ? h("label", { class: "check small" },
      h("input", { type: "checkbox", "data-clear": key }), "Remove the saved " + label.toLowerCase()) : null);
}

function buildSettings(cfg) {
  const groups = {};
  for (const key of Object.keys(cfg)) {
    if (/_set$/.test(key) && typeof cfg[key] === "boolean" && (key.slice(0, -4)) in cfg) continue;
    const g = key.indexOf(".") > 0 ? key.split(".")[0] : key;
    (groups[g] = groups[g] || []).push(key);
  }
  const box = $("#settings-fields");
  box.replaceChildren(...Object.keys(groups).map(g => h("fieldset", { class: "card" },
    h("legend", null, GROUPS[g] || g), groups[g].map(k => settingField(k, cfg[k], cfg)))));
}

async function enterSettings() {
  show($("#settings-err"), "");
  show($("#settings-ok"), "");
  loadOta();
  try {
    S.config = await api("/api/config");
    buildSettings(S.config);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) show($("#settings-err"), "Could not load the settings: " + e.message);
  }
}

// ---- updates (/api/ota: gateway/ota/feature.py) ---------------------------------------

const OTA_BUSY = ["checking", "downloading", "verifying"];

function renderOta(st) {
  $("#ota-installed").textContent = "Installed: " + st.version + (st.slot ? " (app slot " + st.slot + ")" : "");
  const p = $("#ota-progress");
  p.hidden = st.state !== "downloading" && st.state !== "verifying";
  p.value = typeof st.progress === "number" ? st.progress : 0;
  const flashOnly = st.frozen && !st.image;     // a firmware without a second app slot
  const texts = {
    checking: "Checking for updates…",
    available: "Version " + st.available + " is out." + (flashOnly ?
      " This firmware is updated by flashing the release's dtu-gateway-esp32.bin by cable." : ""),
    downloading: "Downloading " + (st.available || "the update") + "… " + (st.progress || 0) + " %",
    verifying: "Checking the download…",
    staged: st.image ? "Written to the other app slot and checked: restarting into it. If it does not come up " +
      "healthy, the gateway goes back to " + st.version + " by itself." : "Checked and staged: restarting into it.",
    applied: st.trial ? "Running " + st.version + " on trial: it is kept once it runs healthy." :
      "Updated to " + st.version + ".",
    error: st.error || "The update failed.",
    idle: st.checked ? "Up to date." : "",
  };
  show($("#ota-state"), texts[st.state] || "");
  $("#ota-state").dataset.state = st.state + (st.trial ? "-trial" : "");
  const upd = $("#ota-update");
  upd.hidden = !(st.state === "available" && st.canApply && !flashOnly);
  upd.textContent = "Update to " + st.available;
  $("#ota-check").disabled = OTA_BUSY.includes(st.state);
  const last = st.last;
  show($("#ota-last"), last && last.result ? "Last update: " + (last.version || "") + ", " +
    (last.result === "ok" ? "kept" : last.result) + (last.why ? " (" + last.why + ")" : "") : "");
  $("#ota-last").dataset.result = last && last.result || "";
}

// Polls while something runs, through the restart (no answer for a while) until
// the new app is kept or the gateway is back on the old one.
async function loadOta() {
  clearTimeout(S.otaTimer);
  let st = null;
  try {
    st = await api("/api/ota");
  } catch (e) {
    if (e.status === 404) {
      show($("#ota-state"), "This gateway is updated by flashing the release's firmware image by cable.");
      $("#ota-check").hidden = true;
      return;
    }
    if (!S.otaWait) return;
    show($("#ota-state"), "Restarting… waiting for the gateway to come back.");
    $("#ota-state").dataset.state = "restarting";
  }
  if (st) renderOta(st);
  if (st && (st.state === "staged" || OTA_BUSY.includes(st.state))) S.otaWait = S.otaWait || st.state === "staged";
  else if (st && !st.trial) S.otaWait = false;
  const again = !st || S.otaWait || st.trial || OTA_BUSY.includes(st.state);
  if (again && S.view === "settings") S.otaTimer = setTimeout(loadOta, 1000);
}

async function otaCheck() {
  show($("#ota-state"), "Checking for updates…");
  try {
    renderOta(await api("/api/ota/check", {}));
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) show($("#ota-state"), e.message);
  }
}

async function otaUpdate() {
  if (!confirm($("#ota-update").textContent + "? The gateway restarts into it.")) return;
  try {
    renderOta(await api("/api/ota/update", {}));
    S.otaWait = true;
    S.otaTimer = setTimeout(loadOta, 500);
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) show($("#ota-state"), e.message);
  }
}

// {key: value} of what the user changed; secrets: null unless typed or cleared.
function settingsChanges() {
  const cfg = S.config, out = {};
  for (const el of $$("#settings-fields [name]")) {
    const key = el.name, old = cfg[key];
    if (el.dataset.secret) {
      const clear = $('[data-clear="' + key + '"]');
      out[key] = el.value ? el.value : clear && clear.checked ? "" : null;
      continue;
    }
    let v;
    if (el.type === "checkbox") v = el.checked;
    else if (el.type === "number") {
      const t = el.value.trim();
      v = t !== "" && isFinite(+t) ? +t : t;   // a non-number goes as typed: the server says why
    } else v = el.value;
    if (v !== old) out[key] = v;
  }
  return out;
}

async function saveSettings(ev) {
  ev.preventDefault();
  const form = $("#settings-form"), gen = $("#settings-err"), ok = $("#settings-ok");
  clearErrors(form);
  show(gen, "");
  show(ok, "");
  const body = settingsChanges();
  if (!Object.keys(body).some(k => body[k] !== null)) {
    show(ok, "Nothing changed.");
    return;
  }
  $("#settings-save").disabled = true;
  try {
    const r = await api("/api/config", body);
    S.config = await api("/api/config");
    buildSettings(S.config);
    const w = r.warnings && r.warnings.length ? " Note: " + r.warnings.join("; ") : "";
    show(ok, (r.changed && r.changed.length ? "Saved: " + r.changed.join(", ") + "." : "Saved.") + w);
  } catch (e) {
    if (e.status === 401 || e.status === 403) return;
    if (!e.field || !fieldError(form, e.field, e.message)) show(gen, e.message);
  } finally {
    $("#settings-save").disabled = false;
  }
}

async function factoryReset() {
  const err = $("#factory-err");
  show(err, "");
  if (!confirm("Forget every setting and reopen the gateway's access point?")) return;
  try {
    await api("/api/factory-reset", {});
    setCsrf("");
    S.session = { auth_required: false, logged_in: false, protect_read: false };
    authButtons();
    S.setupInit = false;
    banner("Factory reset done. Join the gateway's access point DTU-Gateway-… to set it up again.");
    go("setup");
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) show(err, e.message);
  }
}

function enterLogin() {
  show($("#login-err"), "");
  setTimeout(() => $("#l-pass").focus(), 0);
}

// ---- start -------------------------------------------------------------------------------

// Setup first when the gateway is in factory mode (only its own access point
// is up) or knows no DTU yet. "fixed": host mode with --dtu, set up outside.
async function needsSetup() {
  try {
    const w = await api("/api/wifi");
    if (w.mode === "ap" && !w.connected) return true;
    if (w.state === "fixed") return false;
  } catch (e) { /* no WiFi manager */ }
  try {
    const c = await api("/api/config");
    return !c["dtu.host"] && c["dtu.via"] !== "ap";
  } catch (e) {
    return false;
  }
}

async function boot() {
  $("#login-form").addEventListener("submit", login);
  $("#login-btn").addEventListener("click", () => { S.after = S.view; go("login"); });
  $("#logout-btn").addEventListener("click", logout);
  $("#limit-form").addEventListener("submit", setLimit);
  $("#limit-num").addEventListener("input", limitInput);
  $("#limit-range").addEventListener("input", limitInput);
  $("#btn-reboot").addEventListener("click", () => queue("/api/dtu/reboot",
    "Reboot the DTU? It is offline for about a minute.", "DTU reboot queued: it is sent at the next safe moment."));
  $("#btn-restart").addEventListener("click", () => queue("/api/inverter/restart",
    "Restart the inverter? It stops producing for a minute or two.", "Inverter restart queued."));
  $("#scan-btn").addEventListener("click", scan);
  $("#s-ssid").addEventListener("input", () => { for (const r of $$("#nets input")) r.checked = r.value === $("#s-ssid").value; });
  $("#s-show").addEventListener("change", ev => {
    for (const id of ["#s-wpass", "#s-admin", "#s-admin2"]) $(id).type = ev.target.checked ? "text" : "password";
  });
  $("#setup-form").addEventListener("submit", saveSetup);
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#settings-reset").addEventListener("click", enterSettings);
  $("#factory-btn").addEventListener("click", factoryReset);
  $("#ota-check").addEventListener("click", otaCheck);
  $("#ota-update").addEventListener("click", otaUpdate);
  let resize = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => { if (S.hist && S.view === "dashboard") drawChart(S.hist); }, 200);
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && S.view === "dashboard") tick(); });
  window.addEventListener("hashchange", route);
  try {
    await loadSession();
  } catch (e) {
    banner("No answer from the gateway (" + e.message + ").");
  }
  await loadSafeMode();
  if (!VIEWS[location.hash.slice(1)]) {
    const ss = S.session, locked = ss.auth_required && !ss.logged_in && ss.protect_read;
    history.replaceState(null, "", !locked && await needsSetup() ? "#setup" : "#dashboard");
  }
  route();
  document.body.dataset.ready = "1";
}

boot();
})();
