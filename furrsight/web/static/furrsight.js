// The pages' few behaviours, from this file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option submits its form (filters, role changes).
  document.addEventListener("change", function (evt) {
    var field = evt.target;
    if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    }
  });
  // The upload form's progress bar follows htmx's upload progress events.
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var bar = document.getElementById("upload-progress");
    if (bar && evt.detail.lengthComputable) {
      bar.hidden = false;
      bar.value = (evt.detail.loaded / evt.detail.total) * 100;
    }
  });
})();
