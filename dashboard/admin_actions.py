"""A shared step of the admin's bulk actions that go through a service one object at a time."""

from django.contrib import messages


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
