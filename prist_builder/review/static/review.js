// prist review: keyboard shortcuts of the sample page (a accept, r reject, e edit, n/p next/previous,
// m mask, 1-9 one target of a multi-target sample, l list; Ctrl+Enter saves an edit, Esc leaves a
// text box) and "/" to search on the list page.
(function () {
  "use strict";
  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable ||
      (tag === "INPUT" && el.type !== "checkbox" && el.type !== "hidden");
  }
  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  function follow(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }
  document.addEventListener("keydown", function (ev) {
    var target = ev.target;
    if (typing(target)) {
      if (ev.key === "Escape") target.blur();
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && target.tagName === "TEXTAREA") {
        ev.preventDefault();
        submit(target.form);
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var el;
    switch (ev.key) {
      case "a": ev.preventDefault(); submit(document.getElementById("accept-form")); break;
      case "r":
        el = document.getElementById("reject-reason");
        if (el) { ev.preventDefault(); el.focus(); }
        break;
      case "e":
        var edits = document.querySelectorAll("details.edit");
        if (edits.length) {
          ev.preventDefault();
          el = edits[edits.length - 1];
          el.open = true;
          el.querySelector("textarea").focus();
        }
        break;
      case "n": follow("next-link"); break;
      case "p": follow("prev-link"); break;
      case "l": follow("list-link"); break;
      case "m":
        el = document.querySelector(".mask-toggle");
        if (el && !el.disabled) el.checked = !el.checked;
        break;
      case "1": case "2": case "3": case "4": case "5": case "6": case "7": case "8": case "9":
        el = document.querySelector(".target-toggle.k" + (Number(ev.key) - 1));
        if (el) el.checked = !el.checked;
        break;
      case "/":
        el = document.getElementById("focus-search");
        if (el) { ev.preventDefault(); el.focus(); }
        break;
    }
  });
})();
