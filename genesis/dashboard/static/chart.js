// The dashboard's chart: one execution's fills against the market, as plain SVG.
// drawMarketChart(svg, view) draws GET /v1/executions/{id}/market (genesis/dashboard/market.py):
// the 1-minute low-high band and close, the market VWAP since the window's start, our fills
// (sized by quantity, coloured maker/taker), our running average price and the arrival price.
// Amounts arrive as decimal strings; they become numbers here only to be drawn.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 960, HEIGHT = 380;
  const M = { left: 84, right: 18, top: 14, bottom: 34 };
  const MINUTE_MS = 60000;
  const TIME_STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 240, 480];

  function node(tag, attrs, parent) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (parent) parent.appendChild(n);
    return n;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
    return 10 * mag;
  }

  function hhmm(ms) {
    const d = new Date(ms);
    return String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
  }

  function hhmmss(ms) {
    return hhmm(ms) + ":" + String(new Date(ms).getUTCSeconds()).padStart(2, "0");
  }

  function priceText(v) {
    return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // The time and price extent of everything drawn; null when there is nothing to draw.
  function extent(view) {
    const start = Date.parse(view.window.start);
    const ends = [view.window.planned_end, view.window.as_of].filter(Boolean).map(Date.parse);
    const prices = [];
    for (const c of view.candles) prices.push(Number(c.low), Number(c.high));
    for (const p of view.market_vwap) prices.push(Number(p.vwap));
    for (const f of view.fills) { prices.push(Number(f.price)); ends.push(Date.parse(f.at)); }
    if (view.arrival_price) prices.push(Number(view.arrival_price));
    if (!prices.length || Number.isNaN(start)) return null;
    let lo = Math.min(...prices), hi = Math.max(...prices);
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.001 || 1;
    lo -= pad; hi += pad;
    const end = Math.max(start + MINUTE_MS, ...ends);
    return { t0: start, t1: end, lo, hi };
  }

  function axes(svg, e, x, y) {
    const grid = node("g", { class: "grid" }, svg);
    const step = niceStep(e.hi - e.lo, 5);
    for (let v = Math.ceil(e.lo / step) * step; v <= e.hi; v += step) {
      node("line", { x1: M.left, x2: WIDTH - M.right, y1: y(v), y2: y(v) }, grid);
      node("text", { x: M.left - 8, y: y(v) + 4, class: "tick y" }, grid).textContent = priceText(v);
    }
    const spanMin = (e.t1 - e.t0) / MINUTE_MS;
    const stepMin = TIME_STEPS_MIN.find((s) => spanMin / s <= 8) || 960;
    const stepMs = stepMin * MINUTE_MS;
    for (let t = Math.ceil(e.t0 / stepMs) * stepMs; t <= e.t1; t += stepMs) {
      node("line", { x1: x(t), x2: x(t), y1: M.top, y2: HEIGHT - M.bottom }, grid);
      node("text", { x: x(t), y: HEIGHT - M.bottom + 18, class: "tick x" }, grid).textContent = hhmm(t);
    }
    node("text", { x: WIDTH - M.right, y: HEIGHT - 4, class: "tick unit" }, grid).textContent = "UTC";
    node("rect", { x: M.left, y: M.top, width: WIDTH - M.left - M.right, height: HEIGHT - M.top - M.bottom,
                   class: "frame" }, svg);
  }

  function line(svg, points, cls, step) {
    if (points.length < 1) return;
    let d = "";
    points.forEach(([px, py], i) => {
      if (i === 0) d = `M${px.toFixed(1)},${py.toFixed(1)}`;
      else d += step ? `H${px.toFixed(1)}V${py.toFixed(1)}` : `L${px.toFixed(1)},${py.toFixed(1)}`;
    });
    node("path", { d, class: cls }, svg);
  }

  function hline(svg, value, cls, label, x0, x1, y) {
    if (value === null || value === undefined) return;
    node("line", { x1: x0, x2: x1, y1: y(Number(value)), y2: y(Number(value)), class: cls }, svg);
    node("text", { x: x1 - 4, y: y(Number(value)) - 5, class: "label " + cls }, svg).textContent =
      `${label} ${priceText(Number(value))}`;
  }

  window.drawMarketChart = function (svg, view) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    const e = view && view.window && view.window.start ? extent(view) : null;
    if (!e) {
      node("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "placeholder" }, svg).textContent =
        "no fills and no market data yet";
      return false;
    }
    const x = (t) => M.left + (t - e.t0) / (e.t1 - e.t0) * (WIDTH - M.left - M.right);
    const y = (v) => M.top + (e.hi - v) / (e.hi - e.lo) * (HEIGHT - M.top - M.bottom);
    axes(svg, e, x, y);

    const band = node("g", { class: "band" }, svg);
    for (const c of view.candles) {
      const t = Date.parse(c.open_time);
      const x0 = Math.max(x(t), M.left), x1 = Math.min(x(t + MINUTE_MS), WIDTH - M.right);
      if (x1 <= x0) continue;
      node("rect", { x: x0, y: y(Number(c.high)), width: x1 - x0,
                     height: Math.max(1, y(Number(c.low)) - y(Number(c.high))) }, band);
    }
    line(svg, view.candles.map((c) => [x(Date.parse(c.open_time) + MINUTE_MS), y(Number(c.close))]), "close");
    hline(svg, view.arrival_price, "arrival", "arrival", M.left, WIDTH - M.right, y);
    const vwap = view.market_vwap.map((p) => [x(Date.parse(p.at)), y(Number(p.vwap))]);
    line(svg, vwap, "vwap");
    const marks = node("g", { class: "vwap-points" }, svg);
    for (const [px, py] of vwap) node("circle", { cx: px, cy: py, r: 2.5 }, marks);
    const avg = view.fills.map((f) => [x(Date.parse(f.at)), y(Number(f.avg_price))]);
    if (avg.length && view.window.as_of) avg.push([x(Date.parse(view.window.as_of)), avg[avg.length - 1][1]]);
    line(svg, avg, "avg", true);

    if (view.window.as_of && view.state !== "completed" && view.state !== "cancelled"
        && view.state !== "expired" && view.state !== "failed") {
      const t = x(Date.parse(view.window.as_of));
      node("line", { x1: t, x2: t, y1: M.top, y2: HEIGHT - M.bottom, class: "now" }, svg);
    }
    const biggest = Math.max(...view.fills.map((f) => Number(f.qty)), 0) || 1;
    const dots = node("g", { class: "fills" }, svg);
    for (const f of view.fills) {
      const r = 3 + 7 * Math.sqrt(Number(f.qty) / biggest);
      const c = node("circle", { cx: x(Date.parse(f.at)), cy: y(Number(f.price)), r: r.toFixed(1),
                                 class: f.liquidity === "maker" ? "maker" : "taker" }, dots);
      node("title", {}, c).textContent =
        `${hhmmss(Date.parse(f.at))} UTC  ${f.qty} @ ${f.price}  ${f.liquidity}, slice ${f.slice_index}`;
    }
    return true;
  };
})();
