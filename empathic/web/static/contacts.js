// A contact's page: beside each time in the contact's zone, the same time in the viewer's own
// (the browser's zone), when the two differ. Text only (textContent), never HTML.
"use strict";
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  let shown = false;
  for (const span of document.querySelectorAll(".yours[data-at]")) {
    const at = new Date(span.dataset.at);
    if (Number.isNaN(at.getTime())) continue;
    span.textContent = `yours: ${format.format(at)}`;
    span.title = `In your time zone, ${zone}`;
    span.hidden = false;
    shown = true;
  }
  const note = document.querySelector(".yours-note");
  if (note && shown) note.hidden = false;
})();
