// The phone page: the conversation updates without reloading, and the reply box sends
// without leaving the page. The texts are re-read from the API
// (GET /v1/simulator/phones/{phone}/messages) on each message event of /live
// (Empathic.live, static/live.js). Text goes in as text (textContent), never as HTML.
"use strict";
(() => {
  const handset = document.getElementById("phone");
  if (!handset) return;
  const phone = handset.dataset.phone;
  const contact = handset.dataset.contact || "";
  const list = document.getElementById("texts");
  const empty = document.getElementById("no-texts");
  const announce = document.getElementById("announce");
  const url = `/v1/simulator/phones/${encodeURIComponent(phone)}/messages?limit=200`;
  const key = (t) => `${t.direction}|${t.at}|${t.body}`;
  let shown = Array.from(list.querySelectorAll("li")).length;
  let keys = null; // the keys of the texts shown, once read from the API
  let busy = false, again = false;

  function item(t) {
    const li = document.createElement("li");
    li.className = `text ${t.direction === "received" ? "received" : "sent"}`;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = t.direction === "received" ? "Received:" : "Sent:";
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = t.body;
    const meta = document.createElement("small");
    meta.className = "meta";
    const time = document.createElement("time");
    time.dateTime = t.at;
    time.textContent = `${t.at.slice(0, 16).replace("T", " ")} UTC`;
    meta.append(time);
    if (t.receipt) meta.append(` · ${t.receipt}`);
    li.append(who, body, meta);
    return li;
  }

  function draw(texts) {
    const now = texts.map(key);
    const grew = keys !== null && now.length >= keys.length && keys.every((k, i) => k === now[i]);
    if (keys === null || !grew) {
      list.replaceChildren(...texts.map(item));
    } else {
      texts.slice(keys.length).forEach((t) => list.append(item(t)));
      texts.slice(0, keys.length).forEach((t, i) => { // receipts arrive later
        const meta = list.children[i]?.querySelector(".meta");
        if (meta && t.receipt && !meta.textContent.endsWith(t.receipt)) meta.replaceWith(item(t).querySelector(".meta"));
      });
    }
    const fresh = texts.slice(keys === null ? shown : keys.length).filter((t) => t.direction === "received");
    if (fresh.length) announce.textContent = `New text: ${fresh[fresh.length - 1].body}`;
    if (keys === null || texts.length !== keys.length) list.lastElementChild?.scrollIntoView({ block: "nearest" });
    keys = now;
    shown = texts.length;
    empty.hidden = texts.length > 0;
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (answer.ok) draw((await answer.json()).messages);
    } catch (_) {
      // offline for a moment: the next event or tick reads again
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  // A message event about this contact (or any, while the number has no contact yet) re-reads.
  window.Empathic.live((kind, data) => {
    if (kind === "message" && (!contact || !data || data.contact_id === contact)) refresh();
  });
  refresh();

  // The reply box: sent by fetch, so the page stays; a double click sends once.
  const form = document.getElementById("reply");
  if (form) {
    let sending = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sending) return;
      sending = true;
      const button = form.querySelector("button[type=submit]");
      const box = form.querySelector("textarea");
      try {
        const answer = await window.Empathic.send(form.action, {
          method: "POST", body: new FormData(form), headers: { Accept: "application/json" },
        });
        if (answer.ok) {
          box.value = "";
          announce.textContent = "Sent from the phone.";
          refresh();
        } else {
          const problem = await answer.json().catch(() => ({}));
          announce.textContent = problem.detail || `Not sent (${answer.status}).`;
        }
      } catch (_) {
        announce.textContent = "Not sent: the server did not answer.";
      } finally {
        sending = false;
        delete form.dataset.sending;
        button.disabled = false;
        box.focus();
      }
    });
    // Enter sends, Shift+Enter is a new line (as on a phone's keyboard).
    form.querySelector("textarea").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  }

  // Try a flow: the chosen flow's example data, and whether it has an event to fire.
  const chooser = document.getElementById("flow");
  if (chooser) {
    const data = document.getElementById("data");
    const fire = document.getElementById("fire");
    const chose = () => {
      const option = chooser.selectedOptions[0];
      fire.disabled = !option.dataset.event;
      fire.textContent = option.dataset.event ? `Fire its event (${option.dataset.event})` : "Fire its event";
    };
    chooser.addEventListener("change", () => {
      data.value = chooser.selectedOptions[0].dataset.example || "{}";
      chose();
    });
    chose();
  }
})();
