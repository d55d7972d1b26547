// Replen's one chart, drawn as inline SVG: daily sales (bars), stockout days, the forecast
// mean and its band over the protection period, the projected stock and the delivery date.
"use strict";

window.ReplenChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const DAY = 86400000;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const t = (iso) => Date.parse(iso + "T00:00:00Z");
  const short = (ms) =>
    new Date(ms).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });

  // A round tick step giving about four intervals up to v, and the axis top it makes.
  function niceScale(v) {
    const raw = Math.max(v, 1) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    return { step, top: Math.ceil(Math.max(v, 1) / step) * step };
  }

  // item: the store×SKU view of the API; returns an <svg> with a text summary as its label.
  function draw(item, opts) {
    const W = (opts && opts.width) || 860, H = (opts && opts.height) || 260;
    const m = { l: 44, r: 12, t: 16, b: 44 };
    const hist = item.history || [], fc = item.forecast || [], proj = item.projection || [];
    const line = item.line;
    const end = proj.length ? t(proj[proj.length - 1].date) : fc.length ? t(fc[fc.length - 1].date) : 0;
    const fcIn = fc.filter((d) => !end || t(d.date) <= end);
    const days = [...hist.map((d) => t(d.date)), ...fcIn.map((d) => t(d.date)), ...proj.map((d) => t(d.date))];
    if (!days.length) return el("svg", { role: "img", "aria-label": "no data to draw" });
    const x0 = Math.min(...days) - DAY / 2, x1 = Math.max(...days) + DAY / 2;
    const { step, top } = niceScale(Math.max(1, ...hist.map((d) => d.units), ...fcIn.map((d) => d.high ?? d.mean), ...proj.map((d) => d.stock)));
    const X = (ms) => m.l + ((ms - x0) / (x1 - x0)) * (W - m.l - m.r);
    const Y = (v) => H - m.b - (v / top) * (H - m.t - m.b);
    const bw = Math.max(1, ((W - m.l - m.r) * DAY) / (x1 - x0) - 1);
    const outs = hist.filter((d) => d.stockout).length;
    const summary =
      `Sales of the last ${hist.length} days (${outs} stockout days), forecast mean and band` +
      (line ? `, projected stock, delivery on ${line.expected_delivery}` : "");
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": summary });
    svg.appendChild(el("title", {}, summary));

    // grid and y axis
    for (let v = 0; v <= top + 1e-9; v += step) {
      const y = Y(v);
      svg.appendChild(el("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: m.l - 6, y: y + 4, class: "tick", "text-anchor": "end" }, String(Math.round(v * 100) / 100)));
    }
    // x ticks: weekly
    for (let ms = x0 + DAY / 2; ms <= x1; ms += 7 * DAY) {
      svg.appendChild(el("text", { x: X(ms), y: H - m.b + 16, class: "tick", "text-anchor": "middle" }, short(ms)));
    }
    // stockout days: shaded columns and a red tick under the axis
    for (const d of hist.filter((d) => d.stockout)) {
      const x = X(t(d.date)) - bw / 2;
      svg.appendChild(el("rect", { x, y: m.t, width: bw, height: H - m.t - m.b, class: "stockout" }));
      svg.appendChild(el("rect", { x, y: H - m.b + 1, width: bw, height: 4, class: "stockout-mark" }));
    }
    // sales bars
    for (const d of hist) {
      if (!(d.units > 0)) continue;
      svg.appendChild(el("rect", { x: X(t(d.date)) - bw / 2, y: Y(d.units), width: bw, height: Y(0) - Y(d.units), class: "sales" }));
    }
    // forecast band and mean
    if (fcIn.length) {
      if (fcIn[0].high !== undefined) {
        const up = fcIn.map((d) => `${X(t(d.date))},${Y(d.high)}`);
        const lo = fcIn.slice().reverse().map((d) => `${X(t(d.date))},${Y(d.low)}`);
        svg.appendChild(el("polygon", { points: [...up, ...lo].join(" "), class: "band" }));
      }
      svg.appendChild(el("polyline", { points: fcIn.map((d) => `${X(t(d.date))},${Y(d.mean)}`).join(" "), class: "mean" }));
    }
    // projected stock (steps) and the delivery
    if (proj.length) {
      const pts = [];
      for (const d of proj) {
        const x = X(t(d.date));
        pts.push(`${x - bw / 2},${Y(d.stock)}`, `${x + bw / 2},${Y(d.stock)}`);
      }
      svg.appendChild(el("polyline", { points: pts.join(" "), class: "stock" }));
    }
    const marks = [];
    if (item.plan_date) marks.push([t(item.plan_date), "plan", "today"]);
    if (line) marks.push([t(line.expected_delivery), `delivery ${short(t(line.expected_delivery))}`, "delivery"]);
    for (const [ms, label, cls] of marks) {
      const x = X(ms) - bw / 2;
      svg.appendChild(el("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, class: cls }));
      const right = x > W - m.r - 90; // keep the label inside the chart
      svg.appendChild(el("text", { x: right ? x - 4 : x + 4, y: m.t + 10, class: `tick ${cls}-label`, "text-anchor": right ? "end" : "start" }, label));
    }
    // legend
    const legend = [["sales", "sold"], ["stockout-mark", "stockout day"], ["band", "forecast band"], ["mean", "forecast mean"], ["stock", "projected stock"], ["delivery", "delivery"]];
    let lx = m.l;
    for (const [cls, text] of legend) {
      svg.appendChild(el("rect", { x: lx, y: H - 14, width: 12, height: 8, class: `key ${cls}` }));
      svg.appendChild(el("text", { x: lx + 16, y: H - 6, class: "tick" }, text));
      lx += 28 + text.length * 6.4;
    }
    return svg;
  }

  return { draw };
})();
