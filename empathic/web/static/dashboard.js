// The dashboard's charts: figures fetched from /v1/stats for the page's period, drawn with
// Chart.js; each chart's figures also go in a table beside it (text only: textContent).
"use strict";
(() => {
  const box = document.getElementById("charts");
  if (!box || !window.Chart) return;
  const query = box.dataset.query;
  const bucket = box.dataset.bucket;
  const colors = { accepted: "#5b6b7f", sent: "#2458a6", delivered: "#1e7b3c", failed: "#b3261e",
                   queued: "#2458a6", deferred: "#a15c00", sending: "#5b6b7f", now: "#a15c00", in_period: "#2458a6" };

  async function get(path, extra) {
    const url = `/v1/stats/${path}?${query}${extra ? "&" + extra : ""}`;
    const answer = await Empathic.send(url);
    if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
    return answer.json();
  }

  function label(at) {
    const d = new Date(at);
    return bucket === "day" ? d.toISOString().slice(0, 10) : d.toISOString().slice(bucket === "minute" ? 11 : 5, 16).replace("T", " ");
  }

  // A table of the figures: first column the labels, then one column per series.
  function table(id, head, labels, series) {
    const wrap = document.getElementById(`${id}-table`);
    const t = document.createElement("table");
    const tr = t.createTHead().insertRow();
    for (const h of [head, ...series.map((s) => s.label)]) {
      const th = document.createElement("th"); th.scope = "col"; th.textContent = h; tr.appendChild(th);
    }
    const body = t.createTBody();
    labels.forEach((l, i) => {
      const row = body.insertRow();
      const th = document.createElement("th"); th.scope = "row"; th.textContent = l; row.appendChild(th);
      for (const s of series) row.insertCell().textContent = String(s.data[i]);
    });
    wrap.replaceChildren(t);
  }

  function summary(id, text) {
    document.getElementById(`${id}-summary`).textContent = text;
  }

  const sum = (xs) => xs.reduce((a, b) => a + b, 0);

  function draw(id, type, labels, series, head) {
    const canvas = document.getElementById(`${id}-chart`);
    const chart = new Chart(canvas, {
      type,
      data: { labels, datasets: series.map((s) => ({ label: s.label, data: s.data, borderColor: colors[s.key],
        backgroundColor: colors[s.key], pointRadius: 0, borderWidth: 2, tension: 0.2 })) },
      options: { responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false },
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    table(id, head, labels, series);
    canvas.setAttribute("aria-label", `${document.getElementById(`${id}-h`).textContent}: ` +
      series.map((s) => `${s.label} ${sum(s.data)}`).join(", "));
    return chart;
  }

  async function throughput() {
    const { points } = await get("throughput", `bucket=${bucket}`);
    const labels = points.map((p) => label(p.at));
    const keys = ["accepted", "sent", "delivered", "failed"];
    const series = keys.map((k) => ({ key: k, label: k, data: points.map((p) => p[k]) }));
    draw("throughput", "line", labels, series, "Written");
    summary("throughput", series.map((s) => `${sum(s.data)} ${s.label}`).join(", ") + ` by ${bucket}.`);
  }

  async function queue() {
    const { points } = await get("queue", `bucket=${bucket}`);
    const labels = points.map((p) => label(p.at));
    const series = ["queued", "deferred", "sending"].map((k) => ({ key: k, label: k, data: points.map((p) => p[k]) }));
    draw("queue", "line", labels, series, "Sampled");
    const last = points[points.length - 1];
    summary("queue", last ? `Last sample: ${last.queued} queued, ${last.deferred} deferred, ${last.sending} sending (the most in each ${bucket}).`
                          : "No samples in this period yet (the queue is sampled every minute).");
  }

  async function deferred() {
    const found = await get("deferred");
    const reasons = [...new Set([...found.now, ...found.in_period].map((d) => d.reason))];
    const pick = (list) => reasons.map((r) => (list.find((d) => d.reason === r) || { count: 0 }).count);
    const series = [{ key: "now", label: "deferred now", data: pick(found.now) },
                    { key: "in_period", label: "deferred in the period", data: pick(found.in_period) }];
    draw("deferred", "bar", reasons, series, "Reason");
    summary("deferred", reasons.length ? `${sum(series[0].data)} deferred now; ${sum(series[1].data)} deferred in the period.`
                                       : "Nothing deferred.");
  }

  async function failures() {
    const found = await get("messages");
    const list = found.totals.failures;
    const series = [{ key: "failed", label: "failed", data: list.map((f) => f.count) }];
    draw("failures", "bar", list.map((f) => f.reason), series, "Reason");
    summary("failures", list.length ? `${sum(series[0].data)} failed, by carrier error or reason.` : "No failures.");
  }

  for (const [id, job] of [["throughput", throughput], ["queue", queue], ["deferred", deferred], ["failures", failures]]) {
    job().catch((err) => summary(id, `The figures could not be loaded (${err.message}).`));
  }
})();
