"""The billing admin's actions that ask staff for a reason first (voiding, marking paid, ending contracts)."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse


class ReasonForm(forms.Form):
    note = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}), max_length=500)


def reason_page(model_admin, request, *, action: str, title: str, explanation: str, form, items) -> TemplateResponse:
    """The intermediate page of such an action: what it does, the objects it applies to, and the reason field.

    `items`: (pk, label) of each selected object.
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "explanation": explanation,
        "form": form,
        "items": list(items),
        "action": action,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/billing/reason_action.html", context)
