/* The card form of the Billing tab: Stripe.js collects the card. On submit the page asks the server
 * for a SetupIntent (POST data-intent-url, with the form's CSRF token; none is made just for viewing
 * the page), confirms it with Stripe, then the form posts only the SetupIntent's id; the server
 * retrieves it from Stripe and stores the card. A declined card keeps its SetupIntent for the next
 * try. On failure the message is shown and nothing is sent to the server. */
(function () {
  "use strict";

  var form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") {
    return;
  }
  var errors = document.getElementById("card-errors");
  var button = form.querySelector('button[type="submit"]');
  var stripe = Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create("card");
  var clientSecret = null;
  card.mount("#card-element");
  var fillExpiry = acceptExpiryAsTyped();

  /* localstripe's stand-in for Stripe.js (`make run`, the tests) mounts plain inputs: a month, and a year to which it
   * adds "20" (so "2030" became "202030" and a Bad request), jumping the focus as digits arrive. There, one "Expiry"
   * field takes the date as people type or paste it ("12/30", "12 / 2030", "1230") and fills the stand-in's two,
   * which are hidden, once it is typed (on change, and before submitting: filling them as each digit arrives would
   * set off the stand-in's focus jumps mid-date). Real Stripe.js has its own expiry field: none of this applies. */
  function acceptExpiryAsTyped() {
    var element = document.getElementById("card-element");
    var month = element.querySelector('input[placeholder="exp_month"]');
    var year = element.querySelector('input[placeholder="exp_year"]');
    if (!month || !year) {
      return function () {
        return true;
      };
    }
    var expiry = document.createElement("input");
    expiry.type = "text";
    expiry.inputMode = "numeric";
    expiry.autocomplete = "cc-exp";
    expiry.placeholder = "MM / YY";
    expiry.setAttribute("aria-label", "Expiry (MM / YY)");
    expiry.size = 7;
    month.parentNode.insertBefore(expiry, month);
    month.hidden = true;
    year.hidden = true;

    function set(input, value) {
      input.value = value;
      input.dispatchEvent(new Event("input")); // the stand-in reads its fields on input
    }
    function fill() {
      var parts = /^\s*(\d{1,2})\s*\/?\s*(?:20)?(\d{2})\s*$/.exec(expiry.value);
      if (!parts && /^\s*\d{4}\s*$/.test(expiry.value)) {
        parts = [null, expiry.value.trim().slice(0, 2), expiry.value.trim().slice(2)]; // "1230"
      }
      var valid = Boolean(parts) && Number(parts[1]) >= 1 && Number(parts[1]) <= 12;
      set(month, valid ? (parts[1].length === 1 ? "0" + parts[1] : parts[1]) : "");
      set(year, valid ? parts[2] : "");
      return valid;
    }
    expiry.addEventListener("change", fill);
    return fill;
  }

  function showError(message) {
    errors.textContent = message || "The card could not be saved. Try again or use another card.";
    errors.hidden = false;
    button.disabled = false;
  }

  function Refused(message) {
    this.message = message;
  }

  function setupIntentSecret() {
    if (clientSecret) {
      return Promise.resolve(clientSecret);
    }
    return fetch(form.dataset.intentUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (answer) {
          if (answer.reload) {
            window.location.reload(); // the page asks for the password again
          }
          if (!response.ok || !answer.client_secret) {
            throw new Refused(answer.error);
          }
          clientSecret = answer.client_secret;
          return clientSecret;
        });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!fillExpiry()) {
      showError("Enter the card's expiry as MM / YY, for example 12/30.");
      return;
    }
    errors.hidden = true;
    errors.textContent = "";
    button.disabled = true;
    setupIntentSecret()
      .then(function (secret) {
        return stripe.confirmCardSetup(secret, { payment_method: { card: card } });
      })
      .then(function (result) {
        if (result.error) {
          var intent = result.error.setup_intent;
          if (result.error.code === "setup_intent_unexpected_state" || (intent && intent.status === "canceled")) {
            clientSecret = null; // that SetupIntent can take no other card: the next try asks for a new one
          }
          showError(result.error.message);
          return;
        }
        form.elements.setup_intent.value = result.setupIntent.id;
        form.submit();
      })
      .catch(function (error) {
        showError(error instanceof Refused ? error.message : null);
      });
  });
})();
