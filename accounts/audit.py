from accounts.models import AuditEvent, Team


def record_audit(*, team: Team, actor, action: str, target: str = "", **data) -> AuditEvent:
    """Append one audit event. Call inside the transaction of the change it records."""
    return AuditEvent.objects.create(team=team, actor=actor, action=action, target=str(target)[:200], data=data)
