"""Contact sales (Owners): the form for an Enterprise contract; the service records and emails the lead."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.decorators import team_member_required
from accounts.roles import Perm
from sales import services
from sales.forms import ContactSalesForm


@require_http_methods(["GET", "HEAD", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
def contact_sales(request):
    """GET: the form, company prefilled from the team name; POST: send the request to sales."""
    if request.method != "POST":
        return _render(request, ContactSalesForm(initial={"company": request.team.name}))
    form = ContactSalesForm(request.POST)
    if not form.is_valid():
        return _render(request, form)
    try:
        services.request_contact(request.membership, form.cleaned_data)
    except services.SalesError as error:
        form.add_error(None, str(error))
        return _render(request, form)
    messages.success(
        request, "Thank you: our sales team will reply by email within two business days. We sent you a copy."
    )
    return redirect("billing")


def _render(request, form: ContactSalesForm):
    return render(request, "sales/contact_sales.html", {"form": form, "sales_email": settings.SALES_EMAIL})
