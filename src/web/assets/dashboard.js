// certkeeper dashboard: progressive enhancement only. Every page and form works without
// this script; with it, destructive forms ask before they are sent.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
