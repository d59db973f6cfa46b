"""The Support tab: the team's channels (from its plan's data), opening tickets, and the team's tickets.

Every team member may open a ticket; support.services decides whether the channel is the team's.
"""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.decorators import team_member_required
from support import services
from support.forms import TicketForm
from support.models import Ticket

TICKETS_PER_PAGE = 20
# The channels the page describes, in order; which of them a team has comes from services.channels_for.
SHOWN_CHANNELS = {
    "email": "Email",
    "chat": "Chat",
    "phone": "Phone",
    services.ONE_TO_ONE: "1:1 with our engineers",
}


@require_http_methods(["GET", "HEAD", "POST"])
@team_member_required()
def support(request):
    """GET: the tab; POST `channel`, `subject`, `body`: open a ticket on that channel."""
    forms = {channel: TicketForm(channel=channel) for channel in services.TICKET_CHANNELS}
    if request.method != "POST":
        return _render(request, forms)
    channel = request.POST.get("channel", "")
    if channel not in forms:
        messages.error(request, "Tickets are opened by email or chat.")
        return _render(request, forms, status=400)
    form = forms[channel] = TicketForm(request.POST, channel=channel)
    if not form.is_valid():
        return _render(request, forms)
    data = form.cleaned_data
    try:
        ticket = services.open_ticket(request.membership, channel, data.get("subject", ""), data["body"])
    except services.SupportError as error:
        messages.error(request, str(error))
        return _render(request, forms, status=400)
    messages.success(request, f"Ticket #{ticket.pk} opened. We reply by email to {request.user.email}.")
    return redirect("support_ticket", ticket_id=ticket.pk)


@require_http_methods(["GET", "HEAD", "POST"])
@team_member_required()
def ticket_detail(request, ticket_id: int):
    """GET: the ticket's thread; POST `action=close`: close it. Another team's ticket is a 404."""
    ticket = get_object_or_404(Ticket.objects.select_related("opened_by"), pk=ticket_id, team=request.team)
    if request.method == "POST":
        if request.POST.get("action") == "close":
            services.close_ticket(ticket.pk, actor=request.user)
            messages.success(request, f"Ticket #{ticket.pk} closed.")
        return redirect("support_ticket", ticket_id=ticket.pk)
    thread = ticket.messages.select_related("author")
    return render(request, "support/ticket.html", {"ticket": ticket, "thread": thread})


def _render(request, forms: dict, status: int = 200):
    team = request.team
    channels = services.channels_for(team)
    tickets = Ticket.objects.filter(team=team).select_related("opened_by")
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "channels": [_channel(code, label, channels) for code, label in SHOWN_CHANNELS.items()],
        "forms": forms,
        "support_email": settings.SUPPORT_EMAIL,
        "page": page,
        "tickets": page.object_list,
    }
    return render(request, "support/support.html", context, status=status)


def _channel(code: str, label: str, entitled: list[str]) -> dict:
    included = code in entitled
    offered_by = [] if included or code == services.ONE_TO_ONE else services.plans_offering(code)
    return {
        "code": code,
        "label": label,
        "included": included,
        "offered_by": " / ".join(plan.name for plan in offered_by),
        "phone": settings.SUPPORT_PHONE if included and code == "phone" else None,
    }
