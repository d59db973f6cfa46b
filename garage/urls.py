from django.urls import path

from garage import views

urlpatterns = [
    path("garage/", views.garage, name="garage"),
    path("garage/withdraw/", views.withdraw, name="garage_withdraw"),
]
