// The inbox pages: local times, live updates, and on a thread the reply box's counter and
// gate answer (from the server's own count: POST /v1/inbox/{id}/preview) and its templates.
// Everything from the server is put on the page as text (textContent), never as HTML.
"use strict";
(() => {
  const WHY = {
    handoff: "A flow handed the conversation to a person.",
    unclear: "A flow could not understand the reply.",
    free_text: "The person wrote something no keyword or flow handles.",
  };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  const viewerTime = (date) => date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

  // Each <time data-viewer> shows the contact's time; add the reader's own beside it.
  function localTimes(root) {
    for (const time of root.querySelectorAll("time[data-viewer]")) {
      if (time.dataset.done) continue;
      const date = new Date(time.dateTime);
      if (Number.isNaN(date.getTime())) continue;
      time.dataset.done = "1";
      time.after(el("span", { className: "viewer-time muted" }, ` (yours: ${viewerTime(date)})`));
    }
  }

  // An instant of the timeline in the contact's zone, as the server writes it: 2026-12-07 18:03 PST.
  let contactZone = "UTC";
  function contactTime(instant) {
    try {
      const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
        timeZone: contactZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZoneName: "short",
      }).formatToParts(new Date(instant.utc)).map((p) => [p.type, p.value]));
      return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
    } catch {
      return instant.contact.slice(0, 16).replace("T", " ");
    }
  }
  const stamp = (instant) => el("time", { datetime: instant.utc, "data-viewer": "" }, contactTime(instant));

  function nameOf(contact) {
    if (!contact) return "(erased contact)";
    const a = contact.attributes || {};
    const full = [a.first_name, a.last_name].filter((p) => typeof p === "string" && p.trim()).join(" ").trim()
      || (typeof a.name === "string" ? a.name.trim() : "");
    return full || contact.phone || contact.email || contact.id;
  }

  // -- the list ---------------------------------------------------------------------------
  function listPage(list) {
    const { show, q, reader, limit } = list.dataset;
    const params = new URLSearchParams({ status: show === "closed" ? "closed" : "open", reader, limit });
    if (show === "mine") params.set("assigned_to", reader);
    if (show === "unassigned") params.set("assigned_to", "none");
    if (q) params.set("q", q);

    function row(t) {
      const name = nameOf(t.contact);
      const last = t.last_message;
      return el("li", { className: `thread${t.unread ? " unread" : ""}`, "data-id": t.id },
        el("a", { href: `/inbox/${encodeURIComponent(t.id)}`, className: "who" }, name),
        t.unread ? el("span", { className: "badge", title: "unread texts" },
          el("span", { className: "visually-hidden" }, "unread: "), String(t.unread)) : null,
        t.contact && t.contact.phone && t.contact.phone !== name ? el("span", { className: "muted phone" }, t.contact.phone) : null,
        el("span", { className: `why why-${t.why}` }, WHY[t.why] || ""),
        el("p", { className: "last" }, last && last.direction === "outbound" ? el("span", { className: "muted" }, "You: ") : null,
          last ? last.body : ""),
        el("p", { className: "meta muted" }, t.status === "closed" ? "Closed · " : "",
          t.assignee ? `Assigned to ${t.assignee.name || t.assignee.email}` : "Unassigned", " · ",
          el("time", { datetime: t.updated_at }, viewerTime(new Date(t.updated_at)))));
    }

    // Live: the first page is read again (the same size); an older page stays as it was drawn.
    const older = document.getElementById("older");
    const refresh = debounce(async () => {
      const response = await fetch(`/v1/inbox?${params}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = await response.json();
      const threads = page.data;
      list.replaceChildren(...(threads.length ? threads.map(row)
        : [el("li", { className: "empty muted" }, q ? `No thread matches “${q}”.` : "Nothing here.")]));
      if (!older) return;
      if (page.next_cursor) {
        older.href = `/inbox?${new URLSearchParams({ show, q, after: page.next_cursor })}`;
        older.hidden = false;
      } else {
        older.removeAttribute("href");
        older.hidden = true;
      }
    }, 300);
    if ("firstPage" in list.dataset) window.Empathic.live(() => refresh());

    // j / k move between threads, Enter opens one.
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key !== "j" && event.key !== "k") return;
      const links = [...list.querySelectorAll("a.who")];
      if (!links.length) return;
      const at = links.indexOf(document.activeElement);
      const next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
      links[at === -1 ? 0 : next].focus();
      event.preventDefault();
    });
  }

  // -- one thread --------------------------------------------------------------------------
  function entry(e) {
    if (e.kind === "note") {
      const by = e.author ? (e.author.name || e.author.email) : "the system";
      return el("li", { className: "entry note" },
        el("p", { className: "head" }, el("strong", {}, "Note"), ` by ${by} · `, stamp(e.at), " ",
          el("span", { className: "muted" }, "(never sent)")),
        el("p", { className: "body" }, e.body));
    }
    const details = [e.reach.toUpperCase()];
    if (e.template) details.push(`template ${e.template}`);
    if (e.segments) details.push(`${e.segments} segment${e.segments === 1 ? "" : "s"} (${e.encoding})`);
    const item = el("li", { className: `entry ${e.direction}`, "data-id": e.id },
      el("p", { className: "head" }, el("strong", {}, e.direction === "inbound" ? "They wrote" : "Sent"), " ",
        el("span", { className: "muted" }, details.join(" · ")), " · ", stamp(e.at)),
      e.subject ? el("p", { className: "subject" }, e.subject) : null,
      el("p", { className: "body" }, e.body));
    const r = e.reading;
    if (r) {
      const reading = el("p", { className: "reading" }, "Understood: ");
      if (r.keyword) reading.append("keyword ", el("strong", {}, r.keyword.toUpperCase()));
      else {
        reading.append(el("strong", { className: "intent" }, r.intent));
        if (r.language) reading.append(` · language ${r.language}`);
        if (r.confidence !== null) reading.append(` · confidence ${Math.round(r.confidence * 100)}%`);
        if (r.proposed_start) reading.append(" · proposes ", stamp({ utc: r.proposed_start, contact: r.proposed_start }));
        if (r.option) reading.append(` · picks “${r.option}”`);
      }
      item.append(reading);
    }
    if (e.direction === "outbound") {
      item.append(el("ul", { className: "history" }, ...e.history.map((h) => el("li", {},
        el("span", { className: `status-${h.status}` }, h.status), " · ", stamp(h.at),
        h.until ? " · until " : null, h.until ? stamp(h.until) : null,
        h.why ? el("br") : null, h.why ? el("span", { className: "muted" }, h.why)
          : h.reason ? el("span", { className: "muted" }, ` (${h.reason})`) : null))));
    }
    return item;
  }

  function threadPage(timeline) {
    const { thread, contact } = timeline.dataset;
    contactZone = timeline.dataset.timezone || "UTC";
    const form = document.getElementById("reply");
    const refresh = debounce(async () => {
      const response = await fetch(`/v1/inbox/${encodeURIComponent(thread)}/timeline`, { credentials: "same-origin" });
      if (!response.ok) return;
      const view = await response.json();
      contactZone = view.timezone;
      const before = timeline.querySelectorAll(".entry").length;
      timeline.replaceChildren(...view.entries.map(entry));
      const note = document.getElementById("live-note");
      if (note && view.entries.length > before) note.textContent = "New activity in this conversation.";
      localTimes(timeline);
      // The form's last_seen stays what the page was drawn with: a colleague's reply that came
      // in live since then makes the server ask before sending (409), as it should.
    }, 250);
    window.Empathic.live((kind, data) => {
      if ((kind === "message" && (data.thread_id === thread || data.contact_id === contact)) || (kind === "thread" && data.id === thread)) refresh();
    });
    if (!form) return;
    const body = form.elements.body;
    const counter = document.getElementById("counter");
    const gate = document.getElementById("gate");
    let asked = 0;
    const preview = debounce(async () => {
      const mine = ++asked;
      let response;
      try {
        response = await window.Empathic.send(form.dataset.preview, { method: "POST", json: { body: body.value } });
      } catch { return; }
      if (!response.ok || mine !== asked) return;
      const p = await response.json();
      if (mine !== asked) return;
      counter.textContent = `${p.characters} characters · ${p.encoding === "gsm7" ? "GSM-7" : "UCS-2 (Unicode)"} · ${p.segments} segment${p.segments === 1 ? "" : "s"}`
        + (p.too_long ? ` · too long: at most ${p.max_segments} segments` : "");
      counter.classList.toggle("too-long", p.too_long);
      const g = p.gate;
      gate.className = `gate gate-${g.decision}`;
      gate.textContent = g.decision === "send" ? "Policy check: it would go out now."
        : g.decision === "defer" ? `Policy check: it would wait until ${viewerTime(new Date(g.until))}. ${g.why || g.reason}`
        : `Policy check: it would be blocked. ${g.why || g.reason}`;
    }, 250);
    body.addEventListener("input", preview);
    preview();
    const picker = document.getElementById("template");
    if (picker) picker.addEventListener("change", () => {
      const chosen = picker.selectedOptions[0];
      if (chosen && chosen.value) { body.value = chosen.dataset.text; body.dispatchEvent(new Event("input")); body.focus(); }
    });
    // r: reply (outside a field)
    document.addEventListener("keydown", (event) => {
      if (event.key !== "r" || event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
      body.focus();
      event.preventDefault();
    });
  }

  function start() {
    localTimes(document);
    const list = document.getElementById("threads");
    if (list) listPage(list);
    const timeline = document.getElementById("timeline");
    if (timeline) threadPage(timeline);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
