// The planner's page: the PO queue, PO detail with explained lines, exceptions, held POs,
// jobs and data health, forecast value added. Plain JS over the planner API (no build).
"use strict";

(function () {
  const S = {
    // The access token lives in memory only; the refresh token in this tab's sessionStorage
    // (gone when the tab closes) so that a reload does not ask for the password again.
    token: null,
    refresh: sessionStorage.getItem("replen.refresh"),
    renewTimer: null,
    me: null,
    page: 1,
    pageSize: 50,
    selected: new Set(),
    excSelected: new Set(),
    urgency: "",
    queue: null,
  };
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const num = (v, d = 0) =>
    v === null || v === undefined ? "—" : Number(v).toLocaleString("en-GB", { minimumFractionDigits: d, maximumFractionDigits: d });
  const money = (v, cur) => (v === null || v === undefined ? "—" : `${num(v, 2)} ${cur || ""}`.trim());
  const DAY = 86400000;
  const day = (iso) => (iso ? new Date(iso + "T00:00:00Z").toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }) : "—");
  const inDays = (iso, from) => Math.round((Date.parse(iso) - Date.parse(from)) / DAY);
  const when = (iso, from) => {
    if (!iso) return "—";
    const n = inDays(iso, from);
    return `${day(iso)} <small>(${n <= 0 ? "plan day" : "in " + n + " d"})</small>`;
  };
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const EXC = {
    stockout_risk: "Stockout risk", overstock: "Overstock", large_change: "Large change vs previous plan",
    dormant_item: "Order for a dormant item",
    held_po: "Held PO", stale_plan: "Stale plan", stale_pos_feed: "Stale POS feed",
    missing_stock_position: "Missing stock position", missing_rule: "Missing rule",
    unknown_store: "Unknown store in POS", unknown_sku: "Unknown SKU in POS",
    suspect_history: "Suspect sales history (masked)",
  };

  function say(text, kind) {
    const box = $("#status");
    box.textContent = text;
    box.className = "status " + (kind || "");
  }

  // --- API ---------------------------------------------------------------------------
  // What a refusal means to the person at the screen.
  function explain(status, doc) {
    const detail = (doc && (doc.detail || doc.error_description || doc.title)) || `HTTP ${status}`;
    if (status === 401) return `You are not signed in (or your session ended): ${detail}. Sign in again.`;
    if (status === 403) return `Not allowed: ${detail}` + (doc && doc.hint ? ` (${doc.hint})` : "");
    if (status === 429) return `Too many requests: ${detail}. Try again in a moment.`;
    return detail;
  }
  class ApiError extends Error {
    constructor(status, doc) {
      super(explain(status, doc));
      this.status = status;
      this.doc = doc;
    }
  }
  // One refresh at a time: refresh tokens rotate, and the server treats a second use of a
  // spent one as theft (it revokes the whole session).
  let renewing = null;
  function refreshToken() {
    if (!renewing) renewing = renewOnce().finally(() => { renewing = null; });
    return renewing;
  }
  async function renewOnce() {
    if (!S.refresh) return false;
    const r = await fetch("/v1/oauth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: S.refresh }),
    });
    if (!r.ok) {
      forgetTokens();
      return false;
    }
    keepTokens(await r.json());
    return true;
  }
  async function api(method, path, body, retried) {
    const headers = { Accept: "application/json, application/problem+json" };
    if (S.token) headers.Authorization = "Bearer " + S.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && !retried && (await refreshToken())) return api(method, path, body, true);
    const type = r.headers.get("content-type") || "";
    const data = type.includes("json") ? await r.json() : await r.text();
    if (r.status === 401) {
      forgetTokens();
      showSignIn(explain(401, data));
      throw new ApiError(401, data);
    }
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }
  function keepTokens(t) {
    S.token = t.access_token;
    if (t.refresh_token) {
      S.refresh = t.refresh_token;
      sessionStorage.setItem("replen.refresh", S.refresh);
    }
    // Renew a little before the access token expires (refresh tokens rotate on each use).
    clearTimeout(S.renewTimer);
    const seconds = Number(t.expires_in) || 0;
    if (seconds > 0 && S.refresh) {
      S.renewTimer = setTimeout(() => refreshToken().catch(() => {}), Math.max(5, seconds - 30) * 1000);
    }
  }
  function forgetTokens() {
    clearTimeout(S.renewTimer);
    sessionStorage.removeItem("replen.refresh");
    S.token = S.refresh = S.me = null;
  }

  // --- sign-in -----------------------------------------------------------------------
  function showSignIn(why) {
    $$(".view").forEach((v) => (v.hidden = true));
    $("#signin").hidden = false;
    $("#who").textContent = "";
    $("#signin-error").textContent = why || "";
    $("#signin-user").focus();
  }
  async function signIn(ev) {
    ev.preventDefault();
    const form = ev.target;
    $("#signin-error").textContent = "";
    const r = await fetch("/v1/oauth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", username: form.username.value, password: form.password.value }),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const why = data.error_description || data.detail || `HTTP ${r.status}`;
      $("#signin-error").textContent =
        r.status === 429 ? `Too many attempts: ${why}` : `Sign-in failed: ${why}`;
      return;
    }
    keepTokens(data);
    form.password.value = "";
    $("#signin").hidden = true;
    await whoAmI();
    route();
  }
  async function whoAmI() {
    if (!S.token && !(await refreshToken())) {
      showSignIn();
      return false;
    }
    try {
      S.me = await api("GET", "/v1/me");
    } catch (e) {
      if (e.status !== 401) showSignIn(e.message);
      return false;
    }
    const roles = (S.me.roles || []).join(", ");
    $("#who").innerHTML = `<span>${esc(S.me.name || S.me.sub)}</span> <span class="roles">${esc(roles)}</span>` +
      ' <button type="button" id="sign-out">Sign out</button>';
    const out = $("#sign-out");
    if (out) out.addEventListener("click", signOut);
    return true;
  }
  async function signOut() {
    if (S.refresh) {
      await fetch("/v1/oauth/revoke", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: S.refresh }),
      }).catch(() => {});
    }
    forgetTokens();
    showSignIn("Signed out.");
  }
  // The server's own answer (GET /v1/me lists the identity's permissions): one policy table.
  const may = (perm) => ((S.me && S.me.permissions) || []).includes(perm);

  // --- views ---------------------------------------------------------------------------
  function show(id, focus) {
    $("#signin").hidden = true;
    $$(".view").forEach((v) => (v.hidden = v.id !== id));
    const view = id.replace("view-", "");
    $$("nav a[data-view]").forEach((a) => a.setAttribute("aria-current", a.dataset.view === view || (view === "po" && a.dataset.view === "queue") ? "page" : "false"));
    if (focus) {
      const h = $(`#${id} h1`);
      if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
    }
  }
  async function route() {
    if (!S.me && !(await whoAmI())) return;
    const hash = location.hash || "#/queue";
    const [, view, arg] = hash.split("/");
    try {
      if (view === "po" && arg) return await showPo(Number(arg));
      if (view === "exceptions") return await showExceptions();
      if (view === "held") return await showHeld();
      if (view === "ops") return await showOps();
      if (view === "value-added") return await showValueAdded();
      if (view === "what-if") return await showWhatIf();
      return await showQueue();
    } catch (e) {
      if (e.status !== 401) say(e.message, "error");
    } finally {
      updateExceptionCount();
    }
  }

  // --- the queue -----------------------------------------------------------------------
  function queryString() {
    const f = $("#filters"), p = new URLSearchParams();
    for (const name of ["supplier_id", "store_id", "urgency", "exception", "status", "plan_date", "sort"]) {
      const v = f.elements[name].value;
      if (v) p.append(name, v);
    }
    if (S.urgency && !f.elements.urgency.value) p.set("urgency", S.urgency);
    if (f.elements.include_snoozed.checked) p.set("include_snoozed", "true");
    p.set("page", S.page);
    p.set("page_size", S.pageSize);
    return p.toString();
  }
  function fillOptions(select, values, all) {
    const keep = select.value;
    select.innerHTML = `<option value="">${all}</option>` + values.map((v) => `<option>${esc(v)}</option>`).join("");
    select.value = values.includes(keep) ? keep : "";
  }
  async function showQueue() {
    show("view-queue", !S.queue);
    const seq = (S.seq = (S.seq || 0) + 1);
    const data = await api("GET", "/v1/orders?" + queryString());
    if (seq !== S.seq) return; // a newer request (another filter) answers instead
    S.queue = data;
    if (data.facets) {
      fillOptions($("#f-supplier"), data.facets.supplier_id || [], "All suppliers");
      fillOptions($("#f-store"), data.facets.store_id || [], "All stores");
    }
    const cards = $("#urgency-cards");
    const labels = { critical: "run out before delivery", watch: "low cover", ok: "covered" };
    cards.innerHTML = ["critical", "watch", "ok"].map((u) =>
      `<button type="button" class="card ${u}" data-urgency="${u}" aria-pressed="${S.urgency === u}">` +
      `<strong>${num(data.counts[u])}</strong> ${u} <small>${labels[u]}</small></button>`).join("");
    $$("button[data-urgency]", cards).forEach((b) => b.addEventListener("click", () => {
      S.urgency = S.urgency === b.dataset.urgency ? "" : b.dataset.urgency;
      S.page = 1;
      showQueue();
    }));
    const curs = [...new Set(data.items.map((po) => po.currency))];
    $$("#queue-table .cur").forEach((c) => (c.textContent = curs.length === 1 ? `(${curs[0]})` : ""));
    const body = $("#queue-table tbody");
    body.innerHTML = data.items.map((po) => `
      <tr data-po="${po.po_id}" class="${po.urgency}">
        <td><input type="checkbox" class="pick" value="${po.po_id}" aria-label="Select PO ${po.po_id}" ${S.selected.has(po.po_id) ? "checked" : ""}></td>
        <td class="nowrap"><a href="#/po/${po.po_id}" aria-label="Open PO ${po.po_id}">PO ${po.po_id}</a></td>
        <td>${esc(po.supplier_id)}</td><td>${esc(po.store_id)}${po.store_name ? `<br><small>${esc(po.store_name)}</small>` : ""}</td>
        <td class="nowrap"><span class="badge ${po.urgency}">${po.urgency}</span>${po.stockout_lines ? ` <small>${po.stockout_lines} of ${po.lines} lines</small>` : ""}</td>
        <td class="nowrap">${when(po.first_stockout, po.plan_date)}</td>
        <td class="num">${num(po.min_days_of_cover, 1)}</td>
        <td class="num">${num(po.value_at_risk, 2)}</td>
        <td class="num">${num(po.value, 2)}</td>
        <td class="num">${po.lines}${po.edited_lines ? ` <small>(${po.edited_lines} edited)</small>` : ""}</td>
        <td class="nowrap">${day(po.order_date)} → ${day(po.expected_delivery)}</td>
        <td>${po.exceptions.map((x) => `<span class="chip">${esc(EXC[x] || x)}</span>`).join(" ")}${po.stale ? '<span class="chip">stale</span>' : ""}</td>
        <td><span class="status-${po.status}">${po.status}</span>${po.snoozed_until ? ` <small>snoozed to ${po.snoozed_until}</small>` : ""}</td>
      </tr>`).join("") || `<tr><td colspan="13" class="empty">${data.facets && !data.facets.supplier_id.length ? "No purchase orders yet: <code>replen plan</code> makes them (the scheduler runs it every day)." : "No purchase orders match these filters."}</td></tr>`;
    $$("tr[data-po]", body).forEach((tr) => tr.addEventListener("click", (ev) => {
      if (!ev.target.closest("input, a, button")) location.hash = `#/po/${tr.dataset.po}`;
    }));
    $$(".pick", body).forEach((c) => c.addEventListener("change", () => {
      const id = Number(c.value);
      c.checked ? S.selected.add(id) : S.selected.delete(id);
      updateBulk();
    }));
    const from = data.total ? (data.page - 1) * data.page_size + 1 : 0;
    $("#page-info").textContent = `${from}–${Math.min(data.page * data.page_size, data.total)} of ${data.total}`;
    $("#page-prev").disabled = data.page <= 1;
    $("#page-next").disabled = data.page * data.page_size >= data.total;
    updateBulk();
  }
  function updateBulk() {
    const n = S.selected.size;
    $("#selected-count").textContent = `${n} selected`;
    $("#bulk-approve").disabled = !n || !may("orders:approve");
    $("#bulk-reject").disabled = !n || !may("orders:approve");
    $("#bulk-snooze").disabled = !n || !may("orders:edit");
    const picks = $$("#queue-table .pick");
    $("#select-all").checked = picks.length > 0 && picks.every((c) => c.checked);
  }
  async function bulk(action) {
    const body = { po_ids: [...S.selected] };
    if (action === "reject") {
      body.reason = $("#bulk-reason").value.trim();
      if (!body.reason) { say("Rejecting needs a reason: type it in the Reason box.", "error"); $("#bulk-reason").focus(); return; }
    }
    if (action === "snooze") {
      body.until = $("#bulk-until").value;
      if (!body.until) { say("Choose the day to snooze until.", "error"); $("#bulk-until").focus(); return; }
    }
    const r = await api("POST", `/v1/orders/bulk/${action}`, body);
    const failed = r.results.filter((x) => !x.ok);
    const done = r.results.filter((x) => x.ok).map((x) => `PO ${x.po_id}`).join(", ");
    say(`${action}: ${r.succeeded} done${done ? ` (${done})` : ""}` + (failed.length ? `, ${failed.length} refused: ` + failed.map((x) => `PO ${x.po_id}: ${x.error.detail}`).join("; ") : "."), failed.length ? "error" : "ok");
    S.selected.clear();
    await showQueue();
  }

  // --- one PO --------------------------------------------------------------------------
  async function showPo(id) {
    const po = await api("GET", `/v1/orders/${id}`);
    show("view-po");
    const cur = po.currency;
    const canEdit = may("orders:edit") && po.status === "suggested";
    const canDecide = may("orders:approve");
    $("#po-body").innerHTML = `
      <div class="po-head">
        <h1 id="po-title">PO ${po.po_id} · ${esc(po.supplier_id)} → ${esc(po.store_id)}${po.store_name ? ` ${esc(po.store_name)}` : ""}</h1>
        <span class="badge ${po.urgency}">${po.urgency}</span>
        <span class="status-${po.status}" id="po-status">${po.status}</span>
      </div>
      <dl class="facts">
        <div><dt>Order date</dt><dd>${day(po.order_date)}</dd></div>
        <div><dt>Expected delivery</dt><dd>${day(po.expected_delivery)} <small>(in ${inDays(po.expected_delivery, po.plan_date)} d)</small></dd></div>
        <div><dt>Value</dt><dd>${money(po.value, cur)}</dd></div>
        <div><dt>Value at risk</dt><dd>${money(po.value_at_risk, cur)}</dd></div>
        <div><dt>First stockout</dt><dd>${po.first_stockout ? when(po.first_stockout, po.plan_date) : "none before delivery"}</dd></div>
        <div><dt>Plan</dt><dd>${po.plan_date}${po.previous_plan_date ? ` (vs ${po.previous_plan_date})` : ""}</dd></div>
        <div><dt>Model version</dt><dd>${esc(po.model_version)}</dd></div>
      </dl>
      <div class="actions" role="group" aria-label="Decide on this PO">
        <button type="button" class="primary" id="po-approve" ${canDecide && po.status === "suggested" ? "" : "disabled"}>Approve</button>
        <label for="po-reason" class="inline">Reason</label><input id="po-reason" placeholder="needed to reject">
        <button type="button" id="po-reject" ${canDecide && ["suggested", "approved"].includes(po.status) ? "" : "disabled"}>Reject</button>
        <label for="po-until" class="inline">Snooze until</label><input id="po-until" type="date">
        <button type="button" id="po-snooze" ${canEdit ? "" : "disabled"}>Snooze</button>
      </div>
      <h2>Lines</h2>
      <div class="table-wrap"><table class="grid lines">
        <caption class="sr-only">Lines of PO ${po.po_id}</caption>
        <thead><tr><th scope="col">SKU</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Suggested</th>
        <th scope="col" class="num">Previous plan</th><th scope="col" class="num">Cover (days)</th><th scope="col">Runs out</th>
        <th scope="col" class="num">Value</th><th scope="col">Why this quantity</th></tr></thead>
        <tbody>${po.lines.map((l, i) => lineRow(po, l, i)).join("")}</tbody>
      </table></div>
      <h2>Audit trail</h2>
      ${po.audit.length ? `<ol class="audit" id="audit">${po.audit.map((a) => `<li><time>${new Date(a.at).toLocaleString("en-GB")}</time> <strong>${esc(a.actor)}</strong> ${esc(a.action)} <span>${esc(auditText(a))}</span></li>`).join("")}</ol>` : '<p id="audit" class="empty-note">No review action yet.</p>'}`;
    $("#po-approve").addEventListener("click", () => decide(po, "approve"));
    $("#po-reject").addEventListener("click", () => decide(po, "reject"));
    $("#po-snooze").addEventListener("click", async () => {
      const until = $("#po-until").value;
      if (!until) { say("Choose the day to snooze until.", "error"); return; }
      await api("POST", `/v1/orders/${po.po_id}/snooze`, { until });
      say(`PO ${po.po_id} snoozed until ${until}.`, "ok");
      await showPo(po.po_id);
    });
    $$("button.why").forEach((b) => b.addEventListener("click", () => toggleLine(po, b)));
    const h = $("#po-title");
    h.setAttribute("tabindex", "-1");
    h.focus();
  }
  function auditText(a) {
    const d = a.detail || {};
    if (a.action === "edit") return `${d.sku_id}: ${d.from} → ${d.to} (${d.reason})`;
    if (a.action === "snooze" || a.action === "wake") return d.until ? `until ${d.until}` : "";
    return [d.from && `${d.from} → ${d.to}`, d.reason].filter(Boolean).join(" · ");
  }
  function lineRow(po, l, i) {
    const u = l.urgency;
    const delta = l.previous_quantity === null ? "new" : `${num(l.previous_quantity)} (${l.quantity - l.previous_quantity >= 0 ? "+" : "−"}${num(Math.abs(l.quantity - l.previous_quantity))})`;
    return `<tr class="${u.stockout_before_delivery ? "critical" : ""}">
      <th scope="row">${esc(l.sku_id)}<br><small>${esc(l.name || "")}</small></th>
      <td class="num"><strong>${num(l.quantity)}</strong></td>
      <td class="num">${num(l.suggested_quantity)}</td>
      <td class="num">${delta}</td>
      <td class="num">${num(u.days_of_cover, 1)}</td>
      <td class="nowrap">${u.stockout_before_delivery ? `<span class="badge critical">${day(u.stockout_date)}</span>` : "—"}</td>
      <td class="num">${money(l.value, po.currency)}</td>
      <td><button type="button" class="why" aria-expanded="false" aria-controls="line-${i}" data-i="${i}">Explain &amp; edit ${esc(l.sku_id)}</button>
        ${l.exceptions.map((x) => `<span class="chip">${esc(EXC[x] || x)}</span>`).join(" ")}</td>
    </tr>
    <tr class="detail" id="line-${i}" hidden><td colspan="8"></td></tr>`;
  }
  async function toggleLine(po, button) {
    const i = Number(button.dataset.i), l = po.lines[i];
    const row = $(`#line-${i}`);
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
    row.hidden = open;
    if (open) return;
    const cell = row.firstElementChild;
    const canEdit = may("orders:edit") && po.status === "suggested";
    cell.innerHTML = `<div class="line-detail">
      <div class="explain">
        <h3>Why ${num(l.quantity)} units of ${esc(l.sku_id)}</h3>
        <ol class="steps">${l.steps.map((s) => `<li class="${s.kind}"><span class="label">${esc(s.label)}</span>
          <span class="change num">${s.kind === "need" ? num(s.change, 1) : (s.change >= 0 ? "+" : "−") + num(Math.abs(s.change), 1)}</span>
          <span class="total num">= ${num(s.total, 1)}</span><span class="text">${esc(s.text)}</span></li>`).join("")}</ol>
        <p class="sentence">${esc(l.sentence)}</p>
        <form class="edit" data-sku="${esc(l.sku_id)}" aria-label="Change the quantity of ${esc(l.sku_id)}">
          <label for="q-${i}">New quantity</label>
          <input id="q-${i}" name="quantity" type="number" min="0" step="1" value="${l.quantity}" ${canEdit ? "" : "disabled"} required>
          <label for="r-${i}">Reason</label>
          <input id="r-${i}" name="reason" ${canEdit ? "" : "disabled"} required placeholder="why (kept in the audit trail)">
          <button type="submit" ${canEdit ? "" : "disabled"}>Save quantity</button>
        </form>
      </div>
      <figure class="chart-box"><figcaption>Loading the chart…</figcaption></figure>
    </div>`;
    const form = $("form.edit", cell);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { quantity: Number(form.quantity.value), reason: form.reason.value.trim() };
      if (!body.reason) { say("A change needs a reason.", "error"); form.reason.focus(); return; }
      try {
        const r = await api("PUT", `/v1/orders/${po.po_id}/lines/${encodeURIComponent(l.sku_id)}`, body);
        say(`PO ${po.po_id} ${l.sku_id}: ${r.from} → ${r.to}.`, "ok");
        await showPo(po.po_id);
      } catch (e) { say(e.message, "error"); }
    });
    const fig = $("figure", cell);
    try {
      const item = await api("GET", `/v1/items/${encodeURIComponent(po.store_id)}/${encodeURIComponent(l.sku_id)}?days=42`);
      fig.innerHTML = "";
      fig.appendChild(ReplenChart.draw(item));
      const cap = document.createElement("figcaption");
      cap.textContent = `${item.demand_class} demand · model ${item.model || "?"} v${item.model_version || "?"} · ` +
        `${item.stockout_days} stockout day(s) in ${item.history.length} · band ${item.band ? item.band.low + "–" + item.band.high : "n/a"}` +
        (item.stock_position ? ` · stock position ${new Date(item.stock_position.as_of).toLocaleString("en-GB")}: on hand ${num(item.stock_position.on_hand)}, on order ${num(item.stock_position.on_order)}, in transit ${num(item.stock_position.in_transit)}` : " · no stock position received");
      fig.appendChild(cap);
    } catch (e) { fig.querySelector("figcaption").textContent = "No chart: " + e.message; }
  }
  async function decide(po, action) {
    const body = {};
    if (action === "reject") {
      body.reason = $("#po-reason").value.trim();
      if (!body.reason) { say("Rejecting needs a reason.", "error"); $("#po-reason").focus(); return; }
    }
    try {
      const r = await api("POST", `/v1/orders/${po.po_id}/${action}`, body);
      say(`PO ${po.po_id}: ${r.from} → ${r.to}.`, "ok");
      await showPo(po.po_id);
    } catch (e) { say(e.message, "error"); }
  }

  // --- exceptions ------------------------------------------------------------------------
  async function showExceptions() {
    show("view-exceptions", true);
    const state = $("#exc-state").value, type = $("#exc-type").value;
    const p = new URLSearchParams({ state });
    if (type) p.set("type", type);
    const rows = await api("GET", "/v1/exceptions?" + p);
    const typeSel = $("#exc-type");
    if (typeSel.options.length === 1) {
      typeSel.innerHTML += Object.entries(EXC).map(([k, v]) => `<option value="${k}">${esc(v)}</option>`).join("");
      typeSel.value = type;
    }
    const counts = {};
    rows.forEach((x) => (counts[x.type] = (counts[x.type] || 0) + 1));
    $("#exc-summary").innerHTML = Object.entries(counts).map(([k, n]) => `<span class="chip">${esc(EXC[k] || k)}: ${n}</span>`).join(" ");
    S.excSelected.clear();
    $("#exc-table tbody").innerHTML = rows.map((x, i) => `<tr>
      <td><input type="checkbox" class="exc-pick" value="${esc(x.key)}" aria-label="Select: ${esc(x.message)}"></td>
      <td>${esc(EXC[x.type] || x.type)}</td><td>${esc(x.message)}</td><td>${x.day}</td>
      <td>${x.state}${x.snoozed_until ? ` until ${x.snoozed_until}` : ""}${x.confirmed_by ? ` by ${esc(x.confirmed_by)}` : ""}</td>
      <td>${x.po_id ? `<a href="#/po/${x.po_id}">PO ${x.po_id}</a>` : x.type === "held_po" ? '<a href="#/held">Held POs</a>' : x.type.startsWith("stale_pos") || x.type.startsWith("missing") || x.type.startsWith("unknown") ? '<a href="#/ops">Data health</a>' : ""}</td>
    </tr>`).join("") || `<tr><td colspan="6" class="empty">Nothing to clear.</td></tr>`;
    $$(".exc-pick").forEach((c) => c.addEventListener("change", () => {
      c.checked ? S.excSelected.add(c.value) : S.excSelected.delete(c.value);
      updateExcBulk();
    }));
    updateExcBulk();
  }
  function updateExcBulk() {
    const n = S.excSelected.size;
    $("#exc-selected").textContent = `${n} selected`;
    $("#exc-confirm").disabled = !n || !may("orders:edit");
    $("#exc-snooze").disabled = !n || !may("orders:edit");
  }
  async function markExceptions(how) {
    const body = { keys: [...S.excSelected] };
    if (how === "snooze") {
      body.until = $("#exc-until").value;
      if (!body.until) { say("Choose the day to snooze until.", "error"); $("#exc-until").focus(); return; }
    }
    const r = await api("POST", `/v1/exceptions/${how}`, body);
    say(`${r.marked} exception(s) ${how === "confirm" ? "confirmed" : "snoozed"}` + (r.errors.length ? `; ${r.errors.length} refused: ${r.errors.map((e) => e.detail).join("; ")}` : "."), r.errors.length ? "error" : "ok");
    await showExceptions();
    updateExceptionCount();
  }
  async function updateExceptionCount() {
    try {
      const rows = await api("GET", "/v1/exceptions");
      $("#nav-exc-count").textContent = rows.length ? `(${rows.length})` : "";
    } catch (e) { /* shown elsewhere */ }
  }

  // --- held POs, jobs and data, value added --------------------------------------------------
  async function showHeld() {
    show("view-held", true);
    const held = await api("GET", "/v1/held-orders");
    $("#held-body").innerHTML = held.map((h) => `<article class="panel held">
      <h2>${esc(h.supplier_id)} → ${esc(h.store_id)} <small>plan ${h.plan_date}, order ${h.order_date}</small></h2>
      <p><strong>${money(h.value, h.currency)}</strong> of a ${money(h.min_order_value, h.currency)} minimum.</p>
      <p class="release">${esc(h.release.text)}</p>
      <table class="grid"><caption class="sr-only">Lines held</caption><thead><tr><th scope="col">SKU</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Value</th><th scope="col">Why</th></tr></thead>
      <tbody>${h.lines.map((l) => `<tr><th scope="row">${esc(l.sku_id)} <small>${esc(l.name || "")}</small></th><td class="num">${num(l.quantity)}</td><td class="num">${money(l.value, h.currency)}</td><td>${esc(l.sentence)}</td></tr>`).join("")}</tbody></table>
    </article>`).join("") || '<p class="empty">No PO is held: every PO of the newest plan reached its supplier minimum.</p>';
  }
  async function showOps() {
    show("view-ops", true);
    const [health, runs] = await Promise.all([api("GET", "/v1/data-health"), api("GET", "/v1/jobs/runs?limit=30")]);
    const problems = Object.entries(health.problems);
    $("#ops-body").innerHTML = `
      <div class="panel"><h2>Data health</h2>
        <p>Newest plan: <strong>${health.latest_plan_date ?? "none"}</strong> · rules ${health.rules_loaded ? "loaded" : "<strong>not loaded</strong>"} · ${num(health.stock_positions)} stock positions · ${num(health.quarantined_lines)} quarantined POS lines</p>
        <p>${problems.length ? problems.map(([k, n]) => `<span class="chip">${esc(EXC[k] || k)}: ${n}</span>`).join(" ") : "No data problems."}</p>
        <table class="grid"><caption>POS feed per store (stale after ${health.pos_stale_after_hours} h)</caption>
        <thead><tr><th scope="col">Store</th><th scope="col">Newest sale</th><th scope="col" class="num">Age (h)</th><th scope="col">Feed</th></tr></thead>
        <tbody>${health.stores.map((s) => `<tr><th scope="row">${esc(s.store_id)}</th><td>${new Date(s.newest_sale).toLocaleString("en-GB")}</td><td class="num">${num(s.lag_hours, 1)}</td><td>${s.stale ? '<span class="badge critical">stale</span>' : '<span class="badge ok">fresh</span>'}</td></tr>`).join("")}</tbody></table>
      </div>
      <div class="panel"><h2>Job runs</h2>
        <table class="grid"><caption class="sr-only">Newest job runs</caption>
        <thead><tr><th scope="col">Job</th><th scope="col">Slot</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Error</th></tr></thead>
        <tbody>${runs.map((r) => `<tr><th scope="row">${esc(r.job)}</th><td>${esc(r.slot)}</td><td><span class="badge ${r.status === "succeeded" ? "ok" : r.status === "failed" ? "critical" : "watch"}">${r.status}</span></td><td>${new Date(r.started_at).toLocaleString("en-GB")}</td><td>${r.finished_at ? new Date(r.finished_at).toLocaleString("en-GB") : "—"}</td><td>${esc(r.error || "")}</td></tr>`).join("") || '<tr><td colspan="6" class="empty">No job has run yet (start `replen scheduler`).</td></tr>'}</tbody></table>
      </div>`;
  }
  async function showValueAdded() {
    show("view-value-added", true);
    const r = await api("GET", "/v1/value-added");
    $("#fva-body").innerHTML = `<p>${r.changed_lines} changed line(s) on approved POs; ${r.scored_lines} scored (periods ended by ${r.as_of ?? "—"}).</p>
      <table class="grid"><caption class="sr-only">Value added per planner, store and model version</caption>
      <thead><tr><th scope="col">Planner</th><th scope="col">Store</th><th scope="col">Model version</th><th scope="col" class="num">Lines</th><th scope="col" class="num">Units changed</th><th scope="col" class="num">Sold</th><th scope="col" class="num">WAPE suggestion</th><th scope="col" class="num">WAPE planner</th><th scope="col" class="num">Value added</th></tr></thead>
      <tbody>${r.groups.map((g) => `<tr><th scope="row">${esc(g.planner)}</th><td>${esc(g.store_id)}</td><td>${esc(g.model_version)}</td><td class="num">${g.lines}</td><td class="num">${num(g.units_changed)}</td><td class="num">${num(g.sold)}</td><td class="num">${num(g.wape_suggestion * 100, 1)}%</td><td class="num">${num(g.wape_planner * 100, 1)}%</td><td class="num ${g.value_added >= 0 ? "good" : "bad"}">${g.value_added >= 0 ? "+" : "−"}${num(Math.abs(g.value_added) * 100, 1)} pts</td></tr>`).join("") || '<tr><td colspan="9" class="empty">Nothing scored yet.</td></tr>'}</tbody></table>`;
  }

  async function showWhatIf() {
    show("view-what-if", true);
    let r;
    try {
      r = await api("GET", "/v1/what-if");
    } catch (e) {
      if (e.status !== 404) throw e;
      const hint = e.doc && e.doc.hint ? ` — ${esc(e.doc.hint)}` : "";
      $("#whatif-body").innerHTML = `<p class="empty" id="whatif-none">${esc(e.message)}${hint}</p>`;
      return;
    }
    const runs = ["current", "candidate"].filter((n) => r[n]);
    const suppliers = [...new Set(runs.flatMap((n) => r[n].suppliers.map((s) => s.supplier_id)))].sort();
    const pct = (v) => (v == null ? "–" : `${num(v * 100, 1)}%`);
    const rows = [...suppliers, "all"].flatMap((sup) => runs.map((n, i) => {
      const row = sup === "all" ? r[n].total : r[n].suppliers.find((s) => s.supplier_id === sup);
      const head = i === 0 ? `<th scope="rowgroup" rowspan="${runs.length}">${sup === "all" ? "<strong>all</strong>" : esc(sup)}</th>` : "";
      if (!row) return `<tr>${head}<td>${n}</td><td colspan="5" class="empty">not replayed</td></tr>`;
      return `<tr>${head}<td>${n}</td><td class="num">${pct(row.fill_rate)}</td><td class="num">${num(row.avg_on_hand_value)}</td><td class="num">${row.orders}</td><td class="num">${num(row.units_ordered)}</td><td class="num">${num(row.stockout_days)}</td></tr>`;
    }));
    const change = r.change ? `<p id="whatif-change">Candidate against current: fill rate ${r.change.fill_rate >= 0 ? "+" : "−"}${num(Math.abs(r.change.fill_rate ?? 0) * 100, 1)} pts, average stock value ${r.change.avg_on_hand_value >= 0 ? "+" : "−"}${num(Math.abs(r.change.avg_on_hand_value ?? 0) * 100, 1)}%, POs ${r.change.orders >= 0 ? "+" : "−"}${num(Math.abs(r.change.orders ?? 0) * 100, 1)}%.</p>` : "<p>No candidate rules in this run: give <code>--candidate-rules</code> to compare.</p>";
    $("#whatif-body").innerHTML = `<p>${esc(r.start)} … ${esc(r.end)} (${r.days} days), ${r.series} series${r.unplanned_series ? `, ${r.unplanned_series} without rules not replayed` : ""}; initial stock ${esc(r.initial_stock)}; run ${esc(r.saved_at)}.</p>${change}
      <table class="grid" id="whatif-table"><caption class="sr-only">Fill rate, stock value, POs, units and stockout days per supplier, current and candidate rules</caption>
      <thead><tr><th scope="col">Supplier</th><th scope="col">Rules</th><th scope="col" class="num">Fill rate</th><th scope="col" class="num">Avg stock value</th><th scope="col" class="num">POs</th><th scope="col" class="num">Units ordered</th><th scope="col" class="num">Stockout days</th></tr></thead>
      <tbody>${rows.join("")}</tbody></table>`;
  }

  // --- wiring ------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("#signin-form").addEventListener("submit", signIn);
    $("#filters").addEventListener("change", () => { S.page = 1; S.selected.clear(); showQueue().catch((e) => say(e.message, "error")); });
    $("#filters").addEventListener("submit", (e) => e.preventDefault());
    $("#page-prev").addEventListener("click", () => { S.page -= 1; showQueue(); });
    $("#page-next").addEventListener("click", () => { S.page += 1; showQueue(); });
    $("#select-all").addEventListener("change", (e) => {
      $$("#queue-table .pick").forEach((c) => { c.checked = e.target.checked; const id = Number(c.value); c.checked ? S.selected.add(id) : S.selected.delete(id); });
      updateBulk();
    });
    $("#bulk-approve").addEventListener("click", () => bulk("approve").catch((e) => say(e.message, "error")));
    $("#bulk-reject").addEventListener("click", () => bulk("reject").catch((e) => say(e.message, "error")));
    $("#bulk-snooze").addEventListener("click", () => bulk("snooze").catch((e) => say(e.message, "error")));
    $("#exc-state").addEventListener("change", () => showExceptions());
    $("#exc-type").addEventListener("change", () => showExceptions());
    $("#exc-all").addEventListener("change", (e) => {
      $$(".exc-pick").forEach((c) => { c.checked = e.target.checked; c.checked ? S.excSelected.add(c.value) : S.excSelected.delete(c.value); });
      updateExcBulk();
    });
    $("#exc-confirm").addEventListener("click", () => markExceptions("confirm").catch((e) => say(e.message, "error")));
    $("#exc-snooze").addEventListener("click", () => markExceptions("snooze").catch((e) => say(e.message, "error")));
    window.addEventListener("hashchange", route);
    route();
  });
})();
