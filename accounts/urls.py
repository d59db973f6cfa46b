from django.urls import path

from accounts.views import applications, team, tokens

urlpatterns = [
    path("team/", team.team_page, name="team"),
    path("team/new/", team.team_create, name="team_create"),
    path("team/switch/", team.team_switch, name="team_switch"),
    path("team/rename/", team.team_rename, name="team_rename"),
    path("team/audit/", team.audit_log, name="audit_log"),
    path("team/invitations/", team.invite, name="team_invite"),
    path("team/invitations/<int:invitation_id>/resend/", team.invitation_resend, name="invitation_resend"),
    path("team/invitations/<int:invitation_id>/revoke/", team.invitation_revoke, name="invitation_revoke"),
    path("team/members/<int:membership_id>/role/", team.member_role, name="member_role"),
    path("team/members/<int:membership_id>/remove/", team.member_remove, name="member_remove"),
    path("invitations/<str:token>/", team.invitation, name="invitation"),
    path("settings/tokens/", tokens.token_list, name="personal_tokens"),
    path("settings/tokens/new/", tokens.token_create, name="personal_token_create"),
    path("settings/tokens/<int:token_id>/revoke/", tokens.token_revoke, name="personal_token_revoke"),
    path("applications/", applications.application_list, name="application_list"),
    path("applications/new/", applications.application_create, name="application_create"),
    path("applications/<uuid:client_id>/", applications.application_detail, name="application_detail"),
    path("applications/<uuid:client_id>/rename/", applications.application_rename, name="application_rename"),
    path("applications/<uuid:client_id>/delete/", applications.application_delete, name="application_delete"),
    path(
        "applications/<uuid:client_id>/client-secret/rotate/",
        applications.application_rotate_secret,
        name="application_rotate_secret",
    ),
    path(
        "applications/<uuid:client_id>/management-token/rotate/",
        applications.application_rotate_management_token,
        name="application_rotate_management_token",
    ),
    path("applications/<uuid:client_id>/editors/", applications.application_editors, name="application_editors"),
    path("applications/<uuid:client_id>/redirect-uris/", applications.redirect_uri_add, name="redirect_uri_add"),
    path(
        "applications/<uuid:client_id>/redirect-uris/<int:redirect_uri_id>/remove/",
        applications.redirect_uri_remove,
        name="redirect_uri_remove",
    ),
    path(
        "applications/<uuid:client_id>/redirect-uris/<int:redirect_uri_id>/default/",
        applications.redirect_uri_default,
        name="redirect_uri_default",
    ),
]
