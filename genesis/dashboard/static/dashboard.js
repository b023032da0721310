// The genesis dashboard: executions from the HTTP API (docs/api.md), kept current by the live
// event stream (GET /v1/stream, read with fetch so the token travels in a header, never in a
// URL), with pause / resume / cancel for a trader token. The token is asked for and kept in
// this tab's sessionStorage only. Every value from the server is written with textContent.
"use strict";

(function () {
  const TOKEN_KEY = "genesis.api_token";
  const TERMINAL = new Set(["completed", "cancelled", "failed", "expired", "rejected"]);
  const RECENT_SHOWN = 20;
  const LIST_LIMIT = 500;
  const RESYNC_MS = 10000;         // re-read the whole list now and then (and after a reconnect)
  const ROW_REFRESH_MS = 250;      // coalesce a burst of events into one GET per execution
  const MARKET_REFRESH_MS = 1000;  // the chart is re-read at most this often
  const EVENT_LOG_SIZE = 25;

  const S = {
    token: null, role: null, executions: new Map(), rows: new Map(), selected: null,
    stream: null, timers: new Map(), resync: null, log: [], market: null,
    session: 0,  // bumped by every open and forget: a stream loop of an older session stops
  };
  const $ = (id) => document.getElementById(id);

  class ApiFailure extends Error {
    constructor(status, body) {
      super((body && body.error) || `HTTP ${status}`);
      this.status = status;
      this.fix = body && body.fix;
    }
  }

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // ---- the API -------------------------------------------------------------------------
  async function call(method, path) {
    const resp = await fetch(path, { method, cache: "no-store",
      headers: { Authorization: `Bearer ${S.token}`, Accept: "application/json" } });
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    if (resp.status === 401 && S.token) forget(`The daemon refused the token (${(body && body.error) || 401}).`);
    if (!resp.ok) throw new ApiFailure(resp.status, body);
    return body;
  }

  // ---- formatting ----------------------------------------------------------------------
  function price(v) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function qty(v) {
    if (v === null || v === undefined) return "–";
    const s = String(v);
    return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }
  function bps(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(2); }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m ${String(s % 60).padStart(2, "0")}s`;
  }
  function clock(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 19)} UTC`;
  }
  function base(symbol) { return String(symbol || "").split("/")[0]; }

  function actionsFor(x) {
    if (S.role !== "trader" || TERMINAL.has(x.state)) return [];
    if (x.state === "paused") return ["resume", "cancel"];
    if (x.state === "queued") return ["cancel"];
    return ["pause", "cancel"];
  }

  // ---- the tables ----------------------------------------------------------------------
  function makeRow(id) {
    const tr = el("tr");
    tr.dataset.executionId = id;
    const cells = {};
    for (const name of ["id", "order", "state", "progress", "slices", "avg", "arrival", "is", "time", "actions"]) {
      cells[name] = el("td", name);
      tr.appendChild(cells[name]);
    }
    for (const name of ["avg", "arrival", "is", "time"]) cells[name].classList.add("num");
    const bar = el("div", "bar"), fill = el("div", "fill");
    bar.appendChild(fill);
    cells.progress.append(bar, el("span", "progress-text"), el("span", "progress-qty"));
    tr.addEventListener("click", (ev) => { if (!ev.target.closest("button")) select(id); });
    return { tr, cells, fill, actionsKey: null };
  }

  function updateRow(row, x) {
    const c = row.cells;
    c.id.textContent = x.execution_id;
    c.id.title = x.algo ? `${x.algo}${x.urgency ? ", urgency " + x.urgency : ""}` : "";
    c.order.textContent = `${(x.algo || "").toUpperCase()} ${x.side || ""} ${qty(x.target_qty)} ${x.symbol || ""}`;
    c.state.textContent = x.state;
    c.state.className = `state st-${x.state}`;
    c.state.title = x.detail || "";
    const pct = Number(x.progress_pct || 0);
    row.fill.style.width = `${Math.min(100, Math.max(0, pct)).toFixed(1)}%`;
    row.cells.progress.querySelector(".progress-text").textContent = `${pct.toFixed(1)}%`;
    row.cells.progress.querySelector(".progress-qty").textContent =
      `${qty(x.filled_qty)} / ${qty(x.target_qty)} ${base(x.symbol)}`;
    c.slices.textContent = x.slice_count ? `${x.slices_done} / ${x.slice_count}` : "–";
    c.avg.textContent = price(x.avg_price);
    c.arrival.textContent = price(x.arrival_price);
    c.is.textContent = bps(x.implementation_shortfall_bps);
    c.time.textContent = TERMINAL.has(x.state) ? clock(x.ended_at || x.submitted_at) : duration(x.time_remaining_seconds);
    const actions = actionsFor(x);
    const key = actions.join(",");
    if (key !== row.actionsKey) {  // buttons are only rebuilt when the choice changes: a click is never lost
      row.actionsKey = key;
      c.actions.replaceChildren(...actions.map((kind) => {
        const b = el("button", `act ${kind}`, kind[0].toUpperCase() + kind.slice(1));
        b.type = "button";
        b.dataset.action = kind;
        b.addEventListener("click", () => control(x.execution_id, kind, b));
        return b;
      }));
    }
    row.tr.classList.toggle("selected", x.execution_id === S.selected);
  }

  function render() {
    const all = [...S.executions.values()];
    const active = all.filter((x) => !TERMINAL.has(x.state))
      .sort((a, b) => String(a.submitted_at).localeCompare(String(b.submitted_at)));
    const recent = all.filter((x) => TERMINAL.has(x.state))
      .sort((a, b) => String(b.ended_at || b.submitted_at).localeCompare(String(a.ended_at || a.submitted_at)))
      .slice(0, RECENT_SHOWN);
    placeRows($("active").tBodies[0], active);
    placeRows($("recent").tBodies[0], recent);
    const shown = new Set([...active, ...recent].map((x) => x.execution_id));
    for (const [id, row] of S.rows) if (!shown.has(id)) { row.tr.remove(); S.rows.delete(id); }
    $("active-empty").hidden = active.length > 0;
    $("recent-empty").hidden = recent.length > 0;
    $("active-count").textContent = active.length ? `(${active.length})` : "";
    $("recent-count").textContent = recent.length ? `(${recent.length})` : "";
    if (!S.selected || !S.executions.has(S.selected)) {
      const first = active[0] || recent[0];
      if (first) select(first.execution_id);
    }
    renderFigures();
  }

  function placeRows(tbody, list) {
    list.forEach((x, i) => {
      let row = S.rows.get(x.execution_id);
      if (!row) { row = makeRow(x.execution_id); S.rows.set(x.execution_id, row); }
      updateRow(row, x);
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
  }

  // ---- the selected execution ----------------------------------------------------------
  function select(id) {
    if (S.selected === id) return;
    S.selected = id;
    S.log = [];
    $("event-log").replaceChildren();
    for (const [rid, row] of S.rows) row.tr.classList.toggle("selected", rid === id);
    $("detail").hidden = false;
    renderFigures();
    refreshMarket(id);
    loadEventLog(id);
  }

  function renderFigures() {
    const x = S.executions.get(S.selected);
    if (!x) return;
    $("detail-title").textContent =
      `${x.execution_id} · ${(x.algo || "").toUpperCase()} ${x.side || ""} ${qty(x.target_qty)} ${x.symbol || ""} · ${x.state}`;
    const m = S.market && S.market.execution_id === x.execution_id ? S.market : null;
    const figures = [
      ["filled", `${qty(x.filled_qty)} / ${qty(x.target_qty)} ${base(x.symbol)} (${Number(x.progress_pct || 0).toFixed(1)}%)`],
      ["our average", price(x.avg_price)],
      ["market VWAP (window)", price(m ? m.window_market_vwap : x.market_vwap)],
      ["vs market VWAP", m && m.slippage_vs_market_vwap_bps !== null ? `${bps(m.slippage_vs_market_vwap_bps)} bps` : "–"],
      ["arrival", price(x.arrival_price)],
      ["shortfall vs arrival", x.implementation_shortfall_bps ? `${bps(x.implementation_shortfall_bps)} bps` : "–"],
      ["fees", x.fees_usdt ? `${price(x.fees_usdt)} USDT` : "–"],
      ["window", `${clock(x.started_at)} → ${clock(x.end_at)}`],
    ];
    $("detail-figures").replaceChildren(...figures.flatMap(([k, v]) => [el("dt", null, k), el("dd", null, v)]));
  }

  async function refreshMarket(id) {
    try {
      const view = await call("GET", `/v1/executions/${encodeURIComponent(id)}/market`);
      if (S.selected !== id) return;
      S.market = view;
      const drawn = window.drawMarketChart($("chart"), view);
      $("chart-note").textContent = drawn
        ? `market data: ${view.market_source}; ${view.fills.length} fills; as of ${clock(view.window.as_of)}`
        : "";
      renderFigures();
    } catch (err) {
      if (S.selected !== id) return;
      S.market = null;
      window.drawMarketChart($("chart"), null);
      $("chart-note").textContent = err.status === 404 ? "not started yet" : `chart: ${err.message}`;
    }
  }

  async function loadEventLog(id) {
    try {
      const body = await call("GET", `/v1/executions/${encodeURIComponent(id)}/events?limit=10000`);
      if (S.selected !== id) return;
      const known = new Set(S.log.map((e) => `${e.event_type}@${e.occurred_at}`));
      const older = body.events.slice(-EVENT_LOG_SIZE).filter((e) => !known.has(`${e.event_type}@${e.occurred_at}`));
      S.log = [...older, ...S.log].slice(-EVENT_LOG_SIZE);
      drawLog();
    } catch (_) { /* queued: no events yet */ }
  }

  function drawLog() {
    $("event-log").replaceChildren(...S.log.slice().reverse().map((e) => {
      const li = el("li");
      li.append(el("time", null, clock(e.occurred_at)), el("span", "etype", e.event_type), el("span", "edata", summary(e)));
      return li;
    }));
  }

  function summary(e) {
    const d = e.data || {};
    if (e.event_type === "FillRecorded") return `${d.qty} @ ${d.price} ${d.liquidity || ""}`;
    if (e.event_type.endsWith("SliceExecuted")) return `slice ${d.slice_index}: ${d.status}, filled ${d.filled_qty}`;
    if (d.reason) return String(d.reason);
    return "";
  }

  // ---- live updates --------------------------------------------------------------------
  function later(key, ms, fn) {
    if (S.timers.has(key)) return;
    S.timers.set(key, setTimeout(() => { S.timers.delete(key); fn(); }, ms));
  }

  async function refreshOne(id) {
    try {
      const x = await call("GET", `/v1/executions/${encodeURIComponent(id)}`);
      S.executions.set(id, x);
      render();
    } catch (err) { if (err.status === 404) { S.executions.delete(id); render(); } }
  }

  async function loadAll() {
    const body = await call("GET", `/v1/executions?limit=${LIST_LIMIT}`);
    S.executions = new Map(body.executions.map((x) => [x.execution_id, x]));
    render();
  }

  function onEvent(msg) {
    const id = msg.execution_id;
    if (!id) return;
    later(`row:${id}`, ROW_REFRESH_MS, () => refreshOne(id));
    if (id === S.selected) {
      S.log = [...S.log, msg].slice(-EVENT_LOG_SIZE);
      drawLog();
      later(`market:${id}`, MARKET_REFRESH_MS, () => refreshMarket(id));
    }
  }

  function parseBlock(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { type, data: data.join("\n") } : null;
  }

  function setStatus(text, cls) {
    const s = $("stream-status");
    s.textContent = text;
    s.className = `status ${cls}`;
  }

  async function stream(session) {
    let backoff = 1000;
    while (S.token && S.session === session) {
      const abort = new AbortController();
      S.stream = abort;
      try {
        const resp = await fetch("/v1/stream", { cache: "no-store", signal: abort.signal,
          headers: { Authorization: `Bearer ${S.token}`, Accept: "text/event-stream" } });
        if (resp.status === 401) { forget("The daemon refused the token on the stream."); return; }
        if (!resp.ok || !resp.body) throw new Error(`stream: HTTP ${resp.status}`);
        setStatus("live", "on");
        backoff = 1000;
        await loadAll();  // whatever happened while not connected
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const message = parseBlock(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (message && message.type !== "lagged") onEvent(JSON.parse(message.data));
          }
        }
      } catch (_) {
        if (abort.signal.aborted) return;
      }
      if (!S.token || S.session !== session) return;
      setStatus("reconnecting", "wait");
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  // ---- controls ------------------------------------------------------------------------
  function notice(text, kind) {
    const n = $("notice");
    n.textContent = text;
    n.className = `notice ${kind || ""}`;
    n.hidden = !text;
  }

  async function control(id, kind, button) {
    if (kind === "cancel" && !window.confirm(`Cancel execution ${id}? What is filled stays filled; nothing more is sent.`)) {
      return;
    }
    button.disabled = true;
    try {
      await call("POST", `/v1/executions/${encodeURIComponent(id)}/${kind}`);
      notice(`${kind} of ${id} requested; the daemon applies it in a moment.`, "ok");
      later(`row:${id}`, ROW_REFRESH_MS, () => refreshOne(id));
    } catch (err) {
      notice(`${kind} of ${id} refused: ${err.message}${err.fix ? " (" + err.fix + ")" : ""}`, "bad");
      button.disabled = false;
    }
  }

  // ---- signing in and out --------------------------------------------------------------
  function forget(reason) {
    S.session += 1;
    S.token = null;
    S.role = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (S.stream) S.stream.abort();
    if (S.resync) clearInterval(S.resync);
    for (const t of S.timers.values()) clearTimeout(t);
    S.timers.clear();
    S.executions.clear();
    for (const row of S.rows.values()) row.tr.remove();
    S.rows.clear();
    S.selected = null;
    S.market = null;
    $("board").hidden = true;
    $("sign-out").hidden = true;
    $("role").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = reason || "";
    setStatus("offline", "off");
    $("token").focus();
  }

  async function open(token) {
    const session = ++S.session;
    S.token = token;
    let who;
    try {
      who = await call("GET", "/v1/whoami");
    } catch (err) {
      if (S.token) forget(`Could not open the dashboard: ${err.message}`);
      return;
    }
    S.role = who.role;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    const role = $("role");
    role.hidden = false;
    role.textContent = S.role === "trader" ? "trader" : "read only";
    role.className = `role ${S.role}`;
    await loadAll().catch((err) => notice(`Could not list executions: ${err.message}`, "bad"));
    if (S.session !== session) return;
    S.resync = setInterval(() => loadAll().catch(() => {}), RESYNC_MS);
    stream(session);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token").value.trim();
      $("token").value = "";
      if (token) open(token);
    });
    $("sign-out").addEventListener("click", () => forget(""));
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) open(saved); else forget("");
  });
})();
