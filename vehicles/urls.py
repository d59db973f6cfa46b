from django.urls import path

from vehicles import views

urlpatterns = [
    path("vehicles/", views.vehicle_list, name="vehicle_list"),
]
