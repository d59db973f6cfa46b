class TeamRuleError(Exception):
    """A request that breaks a team rule; the message is shown to the user as is."""
