from django.urls import path

from sales import views

urlpatterns = [
    path("billing/contact-sales/", views.contact_sales, name="sales_contact"),
]
