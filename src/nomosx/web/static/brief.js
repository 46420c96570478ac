// Evidence popovers of a brief. The native popover API opens and closes them (click,
// Enter/Space on the button, Escape, click outside) and moves focus in and back; this
// script only places each popover next to the citation that opened it and keeps
// aria-expanded in step. Delegated on the document, so a brief inserted later (the ask
// page) works too.
(function () {
  "use strict";
  let invoker = null;

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.cite[popovertarget]");
    if (button) invoker = button;
  }, true);

  function place(popover, button) {
    const gap = 8;
    const rect = button.getBoundingClientRect();
    popover.classList.add("anchored");
    const width = popover.offsetWidth;
    const height = popover.offsetHeight;
    let left = Math.min(Math.max(gap, rect.left), window.innerWidth - width - gap);
    let top = rect.bottom + gap;
    if (top + height > window.innerHeight - gap && rect.top - gap - height > gap) {
      top = rect.top - gap - height; // no room below: above the citation
    }
    top = Math.max(gap, Math.min(top, window.innerHeight - height - gap));
    popover.style.left = Math.max(gap, left) + "px";
    popover.style.top = top + "px";
  }

  document.addEventListener("toggle", function (event) {
    const popover = event.target;
    if (!(popover instanceof HTMLElement) || !popover.classList.contains("evidence")) return;
    const buttons = document.querySelectorAll('button.cite[popovertarget="' + popover.id + '"]');
    if (event.newState === "open") {
      const button = invoker && invoker.getAttribute("popovertarget") === popover.id
        ? invoker : buttons[0];
      buttons.forEach(function (b) { b.setAttribute("aria-expanded", String(b === button)); });
      if (button) place(popover, button);
    } else {
      buttons.forEach(function (b) { b.setAttribute("aria-expanded", "false"); });
      popover.classList.remove("anchored");
    }
  }, true);

  // keep an open popover next to its citation when the page scrolls or resizes
  function follow() {
    document.querySelectorAll(".evidence.anchored").forEach(function (popover) {
      if (!popover.matches(":popover-open")) return;
      const button = document.querySelector('button.cite[aria-expanded="true"][popovertarget="' + popover.id + '"]');
      if (button) place(popover, button);
    });
  }
  window.addEventListener("resize", follow);
  window.addEventListener("scroll", follow, { passive: true });
})();
