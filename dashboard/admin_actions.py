"""Shared steps of the admin's actions that go through a service one object at a time: the confirmation page
(with the form the action needs, e.g. a reason) and applying the change to each selected object; and the base of
the admin pages that only show a record."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record staff read and nobody edits here (an audit trail, a log): no add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def confirmation_page(
    model_admin, request, *, action, title: str, explanation: str, form, items, submit_label: str = ""
) -> TemplateResponse:
    """What the action does, the objects it applies to (`items`: (pk, label) each) and its form.

    `action`: the changelist action to post back to; None on an object's own page (no checkboxes).
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "explanation": explanation,
        "form": form,
        "items": list(items),
        "action": action,
        "submit_label": submit_label,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


def apply_to_each(model_admin, request, objects, change, *, refused, name, done_label, noun) -> int:
    """Call `change(pk)` for each object; one the service refuses (`refused` raised) is named in a warning and the
    rest go on; then one success message counting what was done. Returns that count."""
    done = 0
    for obj in objects:
        try:
            change(obj.pk)
        except refused as error:
            model_admin.message_user(request, f"{name(obj)}: {error}", messages.WARNING)
        else:
            done += 1
    if done:
        model_admin.message_user(request, f"{done_label} {done} {noun}{'s' if done != 1 else ''}.", messages.SUCCESS)
    return done
