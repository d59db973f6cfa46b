/* The card form of the Billing tab: Stripe.js collects the card and confirms the SetupIntent,
 * then the form posts only the SetupIntent's id; the server retrieves it from Stripe and stores
 * the card. On failure Stripe's message is shown and nothing is sent to the server. */
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
  card.mount("#card-element");

  function showError(message) {
    errors.textContent = message || "The card could not be saved. Try again or use another card.";
    errors.hidden = false;
    button.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errors.hidden = true;
    errors.textContent = "";
    button.disabled = true;
    stripe
      .confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } })
      .then(function (result) {
        if (result.error) {
          showError(result.error.message);
          return;
        }
        form.elements.setup_intent.value = result.setupIntent.id;
        form.submit();
      })
      .catch(function () {
        showError();
      });
  });
})();
