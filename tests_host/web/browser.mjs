// Drives the web app in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core, for tests_host/e2e/test_web_browser.py.
//
//   node tests_host/web/browser.mjs '{"scenario": "dashboard", "base": "http://127.0.0.1:PORT", ...}'
//
// Prints one JSON line: {"ok": true|false, "error", "step", what was observed,
// "external": [URLs the page tried to load from anywhere but the gateway
// (blocked)], "errors": [JavaScript errors], "screenshots": [paths]} and exits
// 0 when the scenario ran through. The pytest side makes the assertions on
// what was observed; waits here are bounded (page timeouts and a watchdog).
import { chromium } from "playwright-core";
import path from "node:path";

const cfg = JSON.parse(process.argv[2]);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SIZES = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 900 } };
const VARIANTS = [["phone", "light"], ["phone", "dark"], ["desktop", "light"], ["desktop", "dark"]];
// Deliberate API errors the app handles itself (validation, login, no such feature).
const EXPECTED_HTTP = /Failed to load resource: the server responded with a status of (400|401|403|404|429)/;

const R = { ok: false, external: [], errors: [], screenshots: [] };
let step = "start";
let browser = null;

function finish(code) {
  process.stdout.write(JSON.stringify(R) + "\n");
  process.exit(code);
}

const watchdog = setTimeout(() => {
  R.error = "watchdog: still at step '" + step + "' after " + (cfg.timeout || 60) + " s";
  R.step = step;
  finish(3);
}, (cfg.timeout || 60) * 1000);

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function getJson(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return r.json();
}

async function newPage(size = "desktop", scheme = "light") {
  const ctx = await browser.newContext({ viewport: SIZES[size], deviceScaleFactor: 1, isMobile: size === "phone",
    hasTouch: size === "phone", colorScheme: scheme, serviceWorkers: "block" });
  await ctx.route("**/*", route => {
    const u = new URL(route.request().url());
    if (u.protocol === "data:" || u.host === new URL(cfg.base).host) return route.continue();
    R.external.push(u.href);
    return route.abort();
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on("pageerror", e => R.errors.push("pageerror: " + e.message));
  page.on("console", m => {
    if (m.type() === "error" && !EXPECTED_HTTP.test(m.text())) R.errors.push("console: " + m.text());
  });
  page.on("dialog", d => d.accept(cfg.dialog || ""));
  return page;
}

async function open(page, hash, query) {
  await page.goto(cfg.base + "/" + (query || "") + (hash ? "#" + hash : ""));
  await page.waitForSelector("body[data-ready]");
}

async function shot(page, name) {
  const file = path.join(cfg.artifacts, name + ".png");
  await page.evaluate(() => window.scrollTo(0, 0));     // the sticky header at the top
  await page.screenshot({ path: file, fullPage: true });
  R.screenshots.push(file);
}

function visibleView(page) {
  return page.evaluate(() => {
    const s = [...document.querySelectorAll("main > section")].find(e => !e.hidden);
    return s ? s.id : null;
  });
}

// What the dashboard shows, read from the DOM.
function readDashboard(page) {
  return page.evaluate(() => {
    const vals = {};
    for (const el of document.querySelectorAll("#cards [data-k]")) vals[el.dataset.k] = el.textContent;
    const st = document.querySelector("#status");
    const ls = document.querySelector("#limit-state");
    return {
      values: vals, conn: st.dataset.conn, err: st.dataset.err, last: st.dataset.last,
      connText: document.querySelector("#st-conn").textContent,
      dot: document.querySelector("#st-dot").className,
      age: document.querySelector("#st-age").textContent,
      reason: document.querySelector("#st-reason").textContent,
      serial: document.querySelector("#dtu-serial").textContent,
      version: document.querySelector("#dtu-version").textContent,
      rssi: document.querySelector("#dtu-rssi").textContent,
      limitState: ls.dataset.state, limitValue: ls.dataset.limit, limitText: ls.textContent,
    };
  });
}

// ---- scenarios ------------------------------------------------------------------

const SCENARIOS = {};

// The dashboard's values against the simulator's last RealDataNew, read around
// a moment when no round ran in between; then the chart against /api/history.
SCENARIOS.dashboard = async () => {
  const page = await newPage();
  step = "open";
  await open(page, null, "?poll=1");              // no #view: a set-up gateway opens on the dashboard
  R.view = await visibleView(page);
  step = "consistent snapshot";
  const until = Date.now() + (cfg.snapshot_s || 20) * 1000;
  for (;;) {
    const c1 = await getJson(cfg.sim_control + "/counters");
    const dom = await readDashboard(page);
    const c2 = await getJson(cfg.sim_control + "/counters");
    const rd = c1.last_real_data;
    if (rd && JSON.stringify(rd) === JSON.stringify(c2.last_real_data) && dom.last === String(rd.timestamp) &&
        !Object.values(dom.values).includes("–")) {
      R.dom = dom;
      R.rd = rd;
      break;
    }
    if (Date.now() > until) throw new Error("no consistent snapshot; last DOM " + JSON.stringify(dom));
    await sleep(150);
  }
  step = "chart";
  await page.waitForSelector("#chart svg, #chart-note:not(:empty)");
  R.history = await page.evaluate(async () => {
    const r = await fetch("/api/history");
    return r.ok ? r.json() : null;
  });
  R.chart = await page.evaluate(() => {
    const c = document.querySelector("#chart");
    const line = c.querySelector("path.line");
    return { points: c.dataset.points === undefined ? null : +c.dataset.points,
      line: line ? line.getAttribute("d") : null, dots: c.querySelectorAll("circle").length,
      label: c.getAttribute("aria-label"), note: document.querySelector("#chart-note").textContent,
      labels: [...c.querySelectorAll("text")].map(t => t.textContent).filter(Boolean) };
  });
  R.ok = true;
};

// A limit set in the page: pending at once, applied once the DTU has it.
SCENARIOS.limit = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "dashboard", "?poll=1");
  await page.waitForSelector("#limit-state[data-state=applied]");
  R.before = await readDashboard(page);
  step = "set";
  await page.fill("#limit-num", String(cfg.limit));
  const [resp] = await Promise.all([
    page.waitForResponse(r => r.url().endsWith("/api/power-limit")),
    page.click("#limit-set"),
  ]);
  const t0 = Date.now();
  R.post = { status: resp.status(), body: await resp.json(), request: JSON.parse(resp.request().postData()) };
  step = "pending";
  await page.waitForSelector('#limit-state[data-state=pending][data-limit="' + cfg.limit + '"]', { timeout: 3000 });
  R.pending = await readDashboard(page);
  R.pending_after_ms = Date.now() - t0;
  await shot(page, "dashboard-limit-pending-desktop-light");
  step = "applied";
  await page.waitForSelector('#limit-state[data-state=applied][data-limit="' + cfg.limit + '"]',
    { timeout: (cfg.apply_s || 45) * 1000 });
  R.applied = await readDashboard(page);
  R.applied_after_ms = Date.now() - t0;
  R.ok = true;
};

// The DTU drops the connection: the state in words, with the reason from
// /api/events; then back to connected.
SCENARIOS.fault = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "dashboard", "?poll=1");
  await page.waitForSelector("#status[data-conn='1']");
  step = "fault";
  await simulator("/fault", cfg.fault);
  step = "shown";
  await page.waitForSelector("#status:not([data-conn='1']) #st-reason:not([hidden])", { timeout: (cfg.show_s || 20) * 1000 });
  R.bad = await readDashboard(page);
  R.events = await page.evaluate(async () => (await (await fetch("/api/events")).json()).events);
  await shot(page, "dashboard-fault-desktop-light");
  step = "recovered";
  await page.waitForSelector("#status[data-conn='1'][data-err='0'] #st-reason[hidden]",
    { state: "attached", timeout: (cfg.recover_s || 40) * 1000 });
  R.good = await readDashboard(page);
  R.ok = true;
};

// The dusk: the simulated DTU jumps to just before sunset, answers zeros and
// goes off the network: the dashboard says night, not a fault; then the
// morning brings it back.
SCENARIOS.night = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "dashboard", "?poll=1");
  await page.waitForSelector("#status[data-conn='1']");
  step = "dusk";
  await simulator("/local-time", { at: cfg.dusk_at });
  step = "night";
  await page.waitForSelector("#status[data-conn='8'] #st-reason:not([hidden])", { timeout: (cfg.night_s || 60) * 1000 });
  R.night = await readDashboard(page);
  await shot(page, "dashboard-night-desktop-light");
  step = "morning";
  await simulator("/local-time", { at: cfg.morning_at });
  await page.waitForSelector("#status[data-conn='1'] #st-reason[hidden]", { state: "attached", timeout: (cfg.morning_s || 90) * 1000 });
  R.morning = await readDashboard(page);
  R.ok = true;
};

// The inverter raises a warning in the simulator: the dashboard lists it as
// active, then, once it ends, as ended.
SCENARIOS.warning = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "dashboard", "?poll=1");
  await page.waitForSelector("#status[data-conn='1']");
  step = "start";
  await simulator("/warning", { code: cfg.code });
  const active = "#alarms li[data-code='" + cfg.code_shown + "'][data-active='1']";
  await page.waitForSelector(active, { timeout: (cfg.start_s || 60) * 1000 });
  R.active = await page.textContent(active);
  R.count = await page.textContent("#alarms-count");
  await shot(page, "dashboard-warning-desktop-light");
  step = "end";
  await simulator("/warning", { code: cfg.code, end: true });
  const ended = "#alarms li[data-code='" + cfg.code_shown + "'][data-active='0']";
  await page.waitForSelector(ended, { timeout: (cfg.end_s || 120) * 1000 });
  R.ended = await page.textContent(ended);
  R.countAfter = await page.textContent("#alarms-count");
  R.ok = true;
};

// An image update from the Settings page (an ESP32 with two app slots, run by
// tests_host/support/image_board.py; the test restarts it when it resets):
// check, update with its progress, the restart, the trial, kept.
SCENARIOS.update = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "settings");
  await page.waitForSelector("#ota-installed:text-matches('Installed: 0\\.1\\.0')");
  R.before = await page.textContent("#ota-installed");
  step = "check";
  await page.click("#ota-check");
  await page.waitForSelector("#ota-update:not([hidden])");
  R.available = await page.textContent("#ota-state");
  R.button = await page.textContent("#ota-update");
  await shot(page, "settings-update-available-desktop-light");
  step = "update";
  R.states = [];
  const seen = setInterval(async () => {
    try {
      const s = await page.getAttribute("#ota-state", "data-state");
      if (s && R.states[R.states.length - 1] !== s) R.states.push(s);
    } catch (e) { /* navigating */ }
  }, 100);
  await page.click("#ota-update");
  step = "kept";
  await page.waitForSelector("#ota-last[data-result='ok']", { timeout: (cfg.kept_s || 60) * 1000 });
  clearInterval(seen);
  R.after = await page.textContent("#ota-installed");
  R.final = await page.textContent("#ota-state");
  R.last = await page.textContent("#ota-last");
  await shot(page, "settings-updated-desktop-light");
  R.ok = true;
};

async function simulator(path, body) {
  const r = await fetch(cfg.sim_control + path, { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error("simulator " + path + ": " + r.status);
}

// A bad value: the server's 400 shows next to its field; then a good change saves.
SCENARIOS.settings = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "settings");
  await page.waitForSelector("#f-dtu-interval");
  R.fields = await page.evaluate(() => [...document.querySelectorAll("#settings-fields [name]")].map(e => ({
    name: e.name, type: e.type, labelled: e.labels.length > 0 || e.hasAttribute("aria-label"),
  })));
  const before = await page.inputValue("#f-dtu-interval");
  step = "bad value";
  await page.fill("#f-dtu-interval", String(cfg.bad_interval));
  let [resp] = await Promise.all([
    page.waitForResponse(r => r.url().endsWith("/api/config") && r.request().method() === "POST"),
    page.click("#settings-save"),
  ]);
  R.bad = { status: resp.status(), body: await resp.json(), request: JSON.parse(resp.request().postData()) };
  await page.waitForSelector('[data-error-for="dtu.interval"]');
  R.error = await page.evaluate(() => {
    const e = document.querySelector('[data-error-for="dtu.interval"]');
    const input = document.querySelector("#f-dtu-interval");
    const field = e.closest(".field");
    return { text: e.textContent, visible: !!(e.offsetWidth || e.offsetHeight), fieldKey: field && field.dataset.key,
      fieldHasInput: !!(field && field.contains(input)), ariaInvalid: input.getAttribute("aria-invalid"),
      describedBy: (input.getAttribute("aria-describedby") || "").split(" ").includes(e.id),
      focused: document.activeElement === input,
      errorsShown: document.querySelectorAll("#settings-form .err:not([hidden])").length };
  });
  await shot(page, "settings-error-desktop-light");
  step = "good values";
  await page.fill("#f-dtu-interval", before);
  await page.fill('#settings-fields [name="dtu.ap_ssid"]', cfg.ap_ssid);
  [resp] = await Promise.all([
    page.waitForResponse(r => r.url().endsWith("/api/config") && r.request().method() === "POST"),
    page.click("#settings-save"),
  ]);
  R.good = { status: resp.status(), body: await resp.json(), request: JSON.parse(resp.request().postData()) };
  await page.waitForSelector("#settings-ok:not([hidden])");
  R.ok_text = await page.textContent("#settings-ok");
  R.errors_left = await page.locator("#settings-form .field .err").count();
  R.ok = true;
};

// Every page asked for, phone and desktop, light and dark.
SCENARIOS.screens = async () => {
  for (const name of cfg.pages) {
    for (const [size, scheme] of VARIANTS) {
      step = "screenshot " + name + " " + size + " " + scheme;
      const page = await newPage(size, scheme);
      await open(page, name);
      if (name === "dashboard") {
        await page.waitForSelector("#status[data-conn='1']");
        await page.waitForSelector("#chart svg, #chart-note:not(:empty)");
        await page.waitForSelector("#events li");
      } else if (name === "settings") {
        await page.waitForSelector("#f-dtu-interval");
        await page.fill("#f-dtu-interval", "1");
        await page.click("#settings-save");
        await page.waitForSelector('[data-error-for="dtu.interval"]');
      } else if (name === "setup") {
        await page.waitForSelector("#nets .net");
      } else if (name === "login") {
        await page.waitForSelector("#l-pass");
      }
      R[name + "-" + size + "-" + scheme] = { view: await visibleView(page),
        overflow: await page.evaluate(w => document.documentElement.scrollWidth > w, SIZES[size].width) };
      await shot(page, name + "-" + size + "-" + scheme);
      await page.context().close();
    }
  }
  R.ok = true;
};

// Factory mode: the first visit opens Setup; pick a scanned network, enter the
// passwords and the DTU's address; the gateway joins; the dashboard shows data.
SCENARIOS.setup = async () => {
  const page = await newPage();
  step = "open";
  await open(page, null);
  R.view = await visibleView(page);
  R.hash = await page.evaluate(() => location.hash);
  step = "scan list";
  await page.waitForSelector("#nets .net");
  R.nets = await page.evaluate(() => [...document.querySelectorAll("#nets .net")].map(n => ({
    name: n.querySelector(".name").textContent, meta: n.querySelector(".meta").textContent,
    labelled: !!n.querySelector("input[type=radio]") })));
  step = "fill";
  await page.locator("#nets .net", { hasText: cfg.ssid }).first().click();
  R.ssid_field = await page.inputValue("#s-ssid");
  await page.fill("#s-wpass", cfg.wifi_password);
  await page.fill("#s-dtu", cfg.dtu);
  await page.fill("#s-admin", cfg.admin);
  await page.fill("#s-admin2", cfg.admin);
  step = "save";
  const [resp] = await Promise.all([
    page.waitForResponse(r => r.url().endsWith("/api/config") && r.request().method() === "POST"),
    page.click("#setup-save"),
  ]);
  R.post = { status: resp.status(), body: await resp.json(), request: JSON.parse(resp.request().postData()) };
  step = "join";
  await page.waitForSelector("#setup-progress[data-state=connected]", { timeout: (cfg.join_s || 20) * 1000 });
  R.progress = await page.textContent("#setup-progress");
  await shot(page, "setup-done-desktop-light");
  step = "dashboard";
  await page.click("#setup-progress a[href='#dashboard']");
  await page.waitForSelector("#status[data-conn='1']", { timeout: (cfg.dash_s || 20) * 1000 });
  await page.waitForFunction(() => !document.querySelector("[data-k='grid.p']").textContent.includes("–"));
  R.dash = await readDashboard(page);
  R.logged_in = await page.isVisible("#logout-btn");
  R.ok = true;
};

// With an admin password: Settings asks for it; a wrong one is refused.
SCENARIOS.login = async () => {
  const page = await newPage();
  step = "open";
  await open(page, "settings");
  R.view = await visibleView(page);
  step = "wrong password";
  await page.fill("#l-pass", cfg.wrong);
  await page.click("#login-submit");
  await page.waitForSelector("#login-err:not([hidden])");
  R.wrong = await page.textContent("#login-err");
  step = "right password";
  await page.fill("#l-pass", cfg.admin);
  await page.click("#login-submit");
  await page.waitForSelector("#view-settings:not([hidden]) #f-dtu-interval");
  R.after = await visibleView(page);
  R.logout_visible = await page.isVisible("#logout-btn");
  R.ok = true;
};

// The safe-mode banner: for every visit [hash, size, scheme, screenshot name or
// ""], what it shows and where (tests_host/e2e/test_web_browser.py asserts).
SCENARIOS.safe_mode = async () => {
  R.visits = [];
  for (const [hash, size, scheme, name] of cfg.visits) {
    step = "visit " + [hash, size, scheme].join(" ");
    const page = await newPage(size, scheme);
    await open(page, hash);
    const seen = await page.evaluate(w => {
      const b = document.querySelector("#safe-banner"), reason = document.querySelector("#safe-reason");
      const box = b.getBoundingClientRect(), a = b.querySelector("a");
      return { hidden: b.hidden, shown: !!(b.offsetWidth || b.offsetHeight),
        top: box.top, bottom: box.bottom, height: innerHeight, reason: reason.textContent,
        reasonElements: reason.children.length, text: b.textContent.replace(/\s+/g, " ").trim(),
        link: a ? a.getAttribute("href") : null, role: b.getAttribute("role"),
        overflow: document.documentElement.scrollWidth > w };
    }, SIZES[size].width);
    seen.view = await visibleView(page);
    seen.key = [hash, size, scheme].join("-");
    if (name) {
      await shot(page, name);
      seen.shot = name;
    }
    R.visits.push(seen);
    await page.context().close();
  }
  R.ok = true;
};

try {
  if (!SCENARIOS[cfg.scenario]) throw new Error("no scenario " + cfg.scenario);
  step = "launch";
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 20000 });
  await SCENARIOS[cfg.scenario]();
} catch (e) {
  R.ok = false;
  R.error = String(e && e.stack || e);
  R.step = step;
}
clearTimeout(watchdog);
try { if (browser) await browser.close(); } catch (e) { /* exiting anyway */ }
finish(R.ok ? 0 : 1);
