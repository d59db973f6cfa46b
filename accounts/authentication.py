"""Who calls the dashboard's JSON API (`/api/v1/...`), and for which team.

Two ways in: the dashboard session (the team chosen in the session, as in the dashboard), or
`Authorization: Bearer igp_...` with a personal access token (the token's team). Either way the
caller acts with the role the user holds in that team now.
"""

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from accounts.middleware import get_current_membership
from accounts.models import PersonalAccessToken, Team, User
from accounts.personal_tokens import is_expired, personal_token_for_secret, touch_personal_token


class PersonalAccessTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer igp_...` → (the token's user, the token). Any Bearer header is ours to judge:
    a bad one answers 401 rather than falling back to the session."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected `Bearer igp_...`.")
        try:
            secret = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = personal_token_for_secret(secret)
        self._check(token)
        touch_personal_token(token)
        return token.user, token

    def _check(self, token: PersonalAccessToken | None) -> None:
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token has been revoked.")
        if is_expired(token):
            raise exceptions.AuthenticationFailed("This token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This token's user account is disabled.")
        if token.role is None:
            raise exceptions.AuthenticationFailed("This token's user is no longer a member of its team.")

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


@dataclass(frozen=True)
class ApiCaller:
    user: User
    team: Team
    role: str


def api_caller(request) -> ApiCaller | None:
    """The authenticated caller's team and current role there (None: signed in but in no team)."""
    if isinstance(request.auth, PersonalAccessToken):
        return ApiCaller(user=request.user, team=request.auth.team, role=request.auth.role)
    membership = get_current_membership(request)
    if membership is None:
        return None
    return ApiCaller(user=request.user, team=membership.team, role=membership.role)
