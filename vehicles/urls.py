from django.urls import path

from vehicles import views
from vehicles.connect import tester_views

urlpatterns = [
    path("vehicles/", views.vehicle_list, name="vehicle_list"),
    path("vehicles/connections/<int:connection_id>/disconnect/", views.disconnect, name="vehicle_disconnect"),
    path("vehicles/simulator/", views.simulated_vehicle_create, name="simulated_vehicle_create"),
    path("applications/<uuid:client_id>/connect-tester/", tester_views.connect_tester, name="connect_tester"),
]
