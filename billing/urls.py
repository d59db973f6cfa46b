from django.urls import path

from billing import card_views, invoice_views, pay_views, views

urlpatterns = [
    path("billing/", views.billing_overview, name="billing"),
    path("billing/card/", card_views.card, name="billing_card"),
    path("billing/card/remove/", card_views.remove_card, name="billing_card_remove"),
    path("billing/card/setup-intent/", card_views.card_setup_intent, name="billing_card_setup_intent"),
    path("billing/details/", invoice_views.billing_details, name="billing_details"),
    path("billing/invoices/<uuid:invoice_id>/", invoice_views.invoice_detail, name="billing_invoice"),
    path("billing/invoices/<uuid:invoice_id>/pdf", invoice_views.invoice_pdf, name="billing_invoice_pdf"),
    path("billing/invoices/<uuid:invoice_id>/pay/", pay_views.pay_invoice, name="billing_invoice_pay"),
    path("billing/switch/", views.plan_switch, name="billing_plan_switch"),
    path("billing/scheduled-change/cancel/", views.plan_change_cancel, name="billing_plan_change_cancel"),
]
