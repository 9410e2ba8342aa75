/* Keyboard shortcuts for the reviewer UI.
 *
 * An element declares its key with data-shortcut="a". Pressing the key (with no
 * modifier, and not while typing in a field) activates it:
 *   - a radio button is checked, then focus moves to data-shortcut-focus (a selector);
 *   - a <details> opens and its first field takes focus;
 *   - anything else is clicked.
 */
(function () {
  "use strict";

  var NOT_TYPING = ["radio", "checkbox", "button", "submit", "reset"];

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && NOT_TYPING.indexOf(target.type) === -1;
  }

  function focusFirstField(container) {
    var field = container.querySelector(
      "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])");
    if (field) field.focus();
  }

  function activate(element) {
    if (element.tagName === "INPUT" && element.type === "radio") {
      element.checked = true;
      element.dispatchEvent(new Event("change", { bubbles: true }));
      var focusSelector = element.getAttribute("data-shortcut-focus");
      var next = focusSelector && document.querySelector(focusSelector);
      (next || element).focus();
      return;
    }
    if (element.tagName === "DETAILS") {
      element.open = true;
      element.scrollIntoView({ block: "nearest" });
      focusFirstField(element);
      return;
    }
    element.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.repeat) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    var key = event.key;
    if (!key || key.length !== 1) return;
    var element = document.querySelector('[data-shortcut="' + key.toLowerCase() + '"]');
    if (!element) return;
    event.preventDefault();
    activate(element);
  });
})();
