// Live updates: Empathic.live(handler) calls handler(kind, data) for each event of GET /live
// ("message": {id, contact_id, thread_id, direction, status}; "thread": {id, status,
// assigned_to}; see empathic/web/live.py). The browser's EventSource reconnects by itself and
// resumes from the last event (Last-Event-ID); a stream the server closed or refused is
// opened again after a pause that grows to 30 s. Returns a function that stops listening.
"use strict";
(() => {
  const handlers = new Set();
  let source = null;
  let pause = 1000;

  function open() {
    source = new EventSource("/live");
    for (const kind of ["message", "thread"]) {
      source.addEventListener(kind, (event) => {
        pause = 1000;
        let data;
        try { data = JSON.parse(event.data); } catch { return; }
        for (const handler of handlers) {
          try { handler(kind, data); } catch (error) { console.error(error); }
        }
      });
    }
    source.addEventListener("open", () => { pause = 1000; document.documentElement.dataset.live = "on"; });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return; // the browser is reconnecting itself
      document.documentElement.dataset.live = "off";
      source = null;
      setTimeout(() => { if (handlers.size && !source) open(); }, pause);
      pause = Math.min(pause * 2, 30000);
    });
  }

  function live(handler) {
    handlers.add(handler);
    if (!source) open();
    return () => {
      handlers.delete(handler);
      if (!handlers.size && source) { source.close(); source = null; }
    };
  }

  window.Empathic = Object.assign(window.Empathic || {}, { live });
})();
