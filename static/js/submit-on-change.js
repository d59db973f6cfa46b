/* A <select data-submit-on-change> submits its form as soon as a choice is made (the team switcher);
 * a <noscript> button next to it does the same without JavaScript. */
(function () {
  "use strict";

  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });
})();
