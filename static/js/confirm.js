/* A form with data-confirm="…" asks before it is sent (disconnecting a vehicle, rotating a secret, removing a
 * card…): Cancel sends nothing. Without JavaScript the form is sent as it is. */
(function () {
  "use strict";

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    });
  });
})();
