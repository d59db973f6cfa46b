from django.urls import path

from requestlog import views

urlpatterns = [
    path("logs/", views.log_list, name="log_list"),
    path("logs/export.csv", views.log_export, name="log_export"),
    path("logs/<str:request_id>/", views.log_detail, name="log_detail"),
]
