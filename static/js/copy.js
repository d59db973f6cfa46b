/* Copy buttons: <button data-copy-target="some-id" hidden> copies the text of the element with that id,
 * <button data-copy-text="…" hidden> the text it carries (a table cell's value).
 * They are hidden until this script shows them, so without JavaScript nobody sees a button that does nothing. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host: select the text and copy the old way.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand("copy");
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.querySelectorAll("button[data-copy-target], button[data-copy-text]").forEach(function (button) {
    var target = button.getAttribute("data-copy-target");
    var source = target ? document.getElementById(target) : null;
    if (target && !source) {
      return;
    }
    var label = button.querySelector(".copy-label");
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source ? source.textContent.trim() : button.getAttribute("data-copy-text");
      copyText(text).then(
        function () { label.textContent = "Copied"; },
        function () { label.textContent = "Select and copy"; }
      );
      window.setTimeout(function () { label.textContent = "Copy"; }, 2000);
    });
  });
})();
