from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import applications, selectors
from accounts.applications import NewCredentials, can_edit_application
from accounts.decorators import team_member_required
from accounts.exceptions import TeamRuleError
from accounts.forms import ApplicationNameForm, EditorsForm, RedirectURIForm, RotateSecretForm
from accounts.models import RedirectURI
from accounts.roles import Perm, Role
from accounts.selectors import get_team_application

APPLICATION_PAGE_SIZE = 25


@team_member_required()
def application_list(request, create_form=None, status=200):
    page = Paginator(selectors.team_applications(request.team), APPLICATION_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"applications": page.object_list, "page": page, "create_form": create_form or ApplicationNameForm()}
    return render(request, "accounts/application_list.html", context, status=status)


@require_http_methods(["GET", "POST"])
@team_member_required(Perm.CREATE_APPLICATIONS)
def application_create(request):
    if request.method == "GET":  # a reload after a form error lands here: the list holds the form
        return redirect("application_list")
    form = ApplicationNameForm(request.POST)
    if not form.is_valid():
        return application_list(request, create_form=form, status=400)
    application, credentials = applications.create_application(actor=request.membership, name=form.cleaned_data["name"])
    messages.success(request, f"Created {application.name}.")
    return _show_credentials_once(request, application, credentials)


def _show_credentials_once(request, application, credentials: NewCredentials):
    # Rendered straight from the POST, never stored: the plaintext exists only in this response.
    response = render(
        request, "accounts/application_credentials.html", {"application": application, "new": credentials}
    )
    response["Cache-Control"] = "no-store"
    return response


@team_member_required()
def application_detail(request, client_id, forms=None, status=200):
    application = get_team_application(request.team, client_id)
    forms = forms or {}
    membership = request.membership
    editors = [m for m in selectors.team_members(request.team) if m.role == Role.EDITOR]
    context = {
        "application": application,
        "can_edit": can_edit_application(membership, application),
        "redirect_uris": application.redirect_uris.all(),
        "client_secrets": selectors.active_client_secrets(application),
        "management_token": getattr(application, "management_token", None),
        "rename_form": forms.get("rename") or ApplicationNameForm(initial={"name": application.name}),
        "redirect_form": forms.get("redirect") or RedirectURIForm(),
        "rotate_form": RotateSecretForm(),
        "editors_form": EditorsForm(
            initial={"editors": list(application.editors.values_list("pk", flat=True))},
            editor_choices=[(m.user_id, m.user.email) for m in editors],
        ),
        "has_editors": bool(editors),
    }
    return render(request, "accounts/application_detail.html", context, status=status)


def _edit_view(view):
    """POST-only, team member, the team's application (404 otherwise), edit permission checked by the service."""

    @require_POST
    @team_member_required()
    def wrapper(request, client_id, **kwargs):
        application = get_team_application(request.team, client_id)
        try:
            return view(request, application, **kwargs)
        except TeamRuleError as error:
            messages.error(request, str(error))
        except RedirectURI.DoesNotExist:
            raise Http404 from None
        return redirect("application_detail", client_id=application.client_id)

    wrapper.__name__ = view.__name__
    return wrapper


@_edit_view
def application_rename(request, application):
    form = ApplicationNameForm(request.POST)
    if not form.is_valid():
        return application_detail(request, application.client_id, forms={"rename": form}, status=400)
    applications.rename_application(actor=request.membership, application=application, name=form.cleaned_data["name"])
    messages.success(request, "Application renamed.")
    return redirect("application_detail", client_id=application.client_id)


@_edit_view
def application_delete(request, application):
    if request.POST.get("confirm_name", "").strip() != application.name:
        messages.error(request, "Type the application's name exactly to delete it.")
        return redirect("application_detail", client_id=application.client_id)
    applications.delete_application(actor=request.membership, application=application)
    messages.success(request, f"Deleted {application.name}. Its credentials no longer work.")
    return redirect("application_list")


@_edit_view
def application_rotate_secret(request, application):
    form = RotateSecretForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long the old secret stays valid.")
        return redirect("application_detail", client_id=application.client_id)
    credentials = applications.rotate_client_secret(
        actor=request.membership, application=application, grace_hours=form.cleaned_data["grace_hours"]
    )
    return _show_credentials_once(request, application, credentials)


@_edit_view
def application_rotate_management_token(request, application):
    credentials = applications.rotate_management_token(actor=request.membership, application=application)
    return _show_credentials_once(request, application, credentials)


@_edit_view
def redirect_uri_add(request, application):
    form = RedirectURIForm(request.POST)
    if form.is_valid():
        try:
            applications.add_redirect_uri(
                actor=request.membership, application=application, uri=form.cleaned_data["uri"]
            )
        except (ValidationError, TeamRuleError) as error:
            form.add_error("uri", error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, "Redirect URI added.")
            back_to = "connect_tester" if request.POST.get("return_to") == "connect_tester" else "application_detail"
            return redirect(back_to, client_id=application.client_id)
    return application_detail(request, application.client_id, forms={"redirect": form}, status=400)


@_edit_view
def redirect_uri_remove(request, application, redirect_uri_id):
    applications.remove_redirect_uri(actor=request.membership, application=application, redirect_uri_id=redirect_uri_id)
    messages.success(request, "Redirect URI removed.")
    return redirect("application_detail", client_id=application.client_id)


@_edit_view
def redirect_uri_default(request, application, redirect_uri_id):
    applications.set_default_redirect_uri(
        actor=request.membership, application=application, redirect_uri_id=redirect_uri_id
    )
    messages.success(request, "Default redirect URI changed.")
    return redirect("application_detail", client_id=application.client_id)


@_edit_view
def application_editors(request, application):
    editor_ids = [m.user_id for m in selectors.team_members(request.team) if m.role == Role.EDITOR]
    form = EditorsForm(request.POST, editor_choices=[(pk, pk) for pk in editor_ids])
    if not form.is_valid():
        messages.error(request, "Choose Editors of this team.")
        return redirect("application_detail", client_id=application.client_id)
    applications.set_application_editors(
        actor=request.membership, application=application, user_ids=form.cleaned_data["editors"]
    )
    messages.success(request, "Editors updated.")
    return redirect("application_detail", client_id=application.client_id)
