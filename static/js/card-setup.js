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
