/* Polled fragments (hx-trigger="every …") that carry data-poll-pauses-on-focus are not
 * refreshed while the person is working inside them: a swap would take their focus away.
 * Written here rather than as an htmx trigger filter, which htmx evaluates as a string:
 * the Content-Security-Policy forbids that. */
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (element.hasAttribute("data-poll-pauses-on-focus") &&
        element.contains(document.activeElement)) {
      event.preventDefault();
    }
  });
})();
