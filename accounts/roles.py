"""Team roles and what each may do (DESIGN.md §8). The one place permissions are decided."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Perm(models.TextChoices):
    VIEW_TEAM = "view_team"
    MANAGE_TEAM = "manage_team"  # rename the team
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove
    MANAGE_OWNERS = "manage_owners"  # grant, change or remove the Owner role
    CREATE_APPLICATIONS = "create_applications"  # create and delete
    EDIT_ANY_APPLICATION = "edit_any_application"  # rename, redirect URIs, credentials
    EDIT_ASSIGNED_APPLICATIONS = "edit_assigned_applications"
    VIEW_AUDIT_LOG = "view_audit_log"
    MANAGE_BILLING = "manage_billing"


_ALL = set(Perm)
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(_ALL),
    Role.ADMIN: frozenset(_ALL - {Perm.MANAGE_OWNERS, Perm.MANAGE_BILLING}),
    Role.EDITOR: frozenset({Perm.VIEW_TEAM, Perm.EDIT_ASSIGNED_APPLICATIONS}),
    Role.VIEWER: frozenset({Perm.VIEW_TEAM}),
}

# Higher number = more authority; used to stop an Admin granting more than they hold.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_can(role: str, perm: str) -> bool:
    return perm in ROLE_PERMISSIONS.get(role, frozenset())
