from django.urls import path

from billing import views

urlpatterns = [
    path("billing/", views.billing_overview, name="billing"),
    path("garage/", views.garage, name="garage"),
]
