from django.urls import path

from support import views

urlpatterns = [
    path("support/", views.support, name="support"),
    path("support/tickets/<int:ticket_id>/", views.ticket_detail, name="support_ticket"),
]
