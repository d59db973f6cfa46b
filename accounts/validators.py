from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from notifications.text import has_control_characters

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def custom_scheme_for(client_id) -> str:
    """Smartcar's mobile redirect scheme for an app: sc<client id>."""
    return f"sc{client_id}"


def validate_redirect_uri(uri: str, *, client_id) -> str:
    """Accept https URLs, http on loopback (for local testing) and the app's own custom scheme."""
    uri = uri.strip()
    if not uri:
        raise ValidationError("Enter a redirect URI.")
    if len(uri) > 2000:
        raise ValidationError("Redirect URIs can be at most 2,000 characters.")
    if any(ch.isspace() for ch in uri):
        raise ValidationError("Redirect URIs cannot contain spaces.")
    if has_control_characters(uri):
        raise ValidationError("Redirect URIs cannot contain control characters.")
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:
        raise ValidationError("Enter a valid URI.") from None
    if parts.fragment or "#" in uri:
        raise ValidationError("Redirect URIs cannot contain a fragment (#...).")
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not hostname:
            raise ValidationError("Enter a full https:// URL with a host name.")
        return uri
    if scheme == "http":
        if hostname in LOOPBACK_HOSTS:
            return uri
        raise ValidationError("Plain http:// is only allowed for localhost; use https://.")
    if scheme == custom_scheme_for(client_id).lower():
        return uri
    raise ValidationError(
        f"Use https://, http://localhost for testing, or this app's custom scheme {custom_scheme_for(client_id)}://."
    )


def validate_single_line(value: str) -> None:
    """A name or subject is one line of text: it ends up in email subjects, page titles and the audit log."""
    if has_control_characters(value):
        raise ValidationError(
            "Use one line of text, without line breaks, tabs or other control characters.", code="control_characters"
        )
