"""Transactional email, healthchecks-style: emails/<name>-subject.txt, -body.txt, -body.html."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def send_templated_email(name: str, *, to: list[str], context: dict) -> None:
    context = {"site_name": settings.SITE_NAME, "site_root": settings.SITE_ROOT, **context}
    subject = render_to_string(f"emails/{name}-subject.txt", context).strip().replace("\n", " ")
    text_body = render_to_string(f"emails/{name}-body.txt", context)
    html_body = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text_body, to=to)
    message.attach_alternative(html_body, "text/html")
    message.send()
