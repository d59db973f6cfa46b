/* The pay page, when the bank wants the Owner to authenticate a payment (3-D Secure): Stripe.js
 * confirms the PaymentIntent with the card on file, then the form posts only the PaymentIntent's
 * id; the server retrieves it from Stripe and records what Stripe says, success or not. */
(function () {
  "use strict";

  var form = document.getElementById("confirm-payment-form");
  if (!form || typeof Stripe === "undefined") {
    return;
  }
  var errors = document.getElementById("payment-errors");
  var button = form.querySelector('button[type="submit"]');
  var stripe = Stripe(form.dataset.publishableKey);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errors.hidden = true;
    button.disabled = true;
    stripe
      .confirmCardPayment(form.dataset.clientSecret, { payment_method: form.dataset.paymentMethod })
      .then(function () {
        form.submit(); // whatever the outcome: the server asks Stripe and tells the Owner
      })
      .catch(function () {
        errors.textContent = "The payment could not be confirmed. Check your connection and try again.";
        errors.hidden = false;
        button.disabled = false;
      });
  });
})();
