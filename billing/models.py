"""Plans, each team's subscription, billing periods with their counters, usage, and the billing audit log.

Money is integer cents (USD). A period's counters (`requests_used`, `vehicles_active`,
`accrued_cents`) are changed only by billing.metering, under the period row's lock, in the
same transaction as the UsageEvent / ActiveVehicle / UsageDaily rows they summarise, so
they always agree (DESIGN §4).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Application, Team
from billing import rating


class Plan(models.Model):
    """A price list entry (DESIGN §1). Rows are seeded by a migration and edited by staff."""

    FREE, PAY_AS_YOU_GO, ENTERPRISE = "free", "payg", "enterprise"

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=200, blank=True)
    price_per_request_cents = models.PositiveIntegerField(default=0)
    # Per billing period; empty means unlimited (contracts).
    request_allowance = models.PositiveIntegerField(null=True, blank=True)
    vehicle_allowance = models.PositiveIntegerField(null=True, blank=True)
    requires_card = models.BooleanField(default=False)
    self_serve = models.BooleanField(default=True, help_text="Developers may switch to it in the Billing tab.")
    support_channels = models.JSONField(default=list, blank=True, help_text='e.g. ["email", "chat", "phone"]')
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self):
        return self.name


class Subscription(models.Model):
    """A team's plan, and the change scheduled for the end of its current period."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        SUSPENDED = "suspended", "Suspended"

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    pending_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pending_at = models.DateTimeField(null=True, blank=True)  # when pending_plan takes over (a period's end)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Whether a card is on file: set when billing.cards stores the team's default Stripe PaymentMethod.
    card_on_file = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    # The idempotency key the Customer is created under, a random id stored before the call: a key made from the
    # team's row id would repeat after a database reset, or in another environment sharing the Stripe account,
    # and Stripe would answer with that other Customer (or refuse the key for 24 hours).
    stripe_customer_key = models.CharField(max_length=64, blank=True)
    payment_method_id = models.CharField(max_length=64, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # PaymentMethods a new card replaced, still attached to the Customer at Stripe until billing.cards detaches them
    # (at once, or beat's `detach_replaced_cards` retries): never charged again, but kept off the Customer.
    cards_to_detach = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.team}: {self.plan}"


class BillingPeriod(models.Model):
    """One monthly cycle of a team, `[start, end)` in UTC, with the counters metering keeps."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="billing_periods")
    start = models.DateTimeField()
    end = models.DateTimeField()
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")  # the plan in force now
    # Entitlements in force (null = unlimited) and the price of a billable request from now on.
    request_allowance = models.PositiveIntegerField(null=True, blank=True)
    vehicle_allowance = models.PositiveIntegerField(null=True, blank=True)
    unit_price_cents = models.PositiveIntegerField(default=0)
    # The Enterprise contract in force now: its requests are priced by its tiers when the period closes.
    contract = models.ForeignKey("Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requests_used = models.PositiveIntegerField(default=0)
    vehicles_active = models.PositiveIntegerField(default=0)
    accrued_cents = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "start"], name="billing_period_unique_team_start"),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="billing_period_end_after_start"),
        ]
        indexes = [models.Index(fields=["team", "end"], name="billing_period_team_end")]
        ordering = ["-start"]

    def __str__(self):
        return f"{self.team} {self.start:%Y-%m-%d} → {self.end:%Y-%m-%d}"


class ActiveVehicle(models.Model):
    """A vehicle with at least one billable request in the period (counted once per team, DESIGN §3)."""

    period = models.ForeignKey(BillingPeriod, on_delete=models.CASCADE, related_name="active_vehicles")
    vehicle = models.ForeignKey("vehicles.SimulatedVehicle", on_delete=models.PROTECT, related_name="+")
    first_request_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["period", "vehicle"], name="active_vehicle_unique")]


class UsageEvent(models.Model):
    """One counted billable request. `request_id` is unique, so a retried request counts once.

    Every billable request inserts one, so the table keeps only the indexes something reads: the unique request id
    (a constraint, not `unique=True`, which on PostgreSQL adds a second index for LIKE that nothing uses), and
    (period, vehicle), which also serves every lookup by period alone.
    """

    request_id = models.CharField(max_length=100)
    period = models.ForeignKey(BillingPeriod, on_delete=models.PROTECT, related_name="usage_events", db_index=False)
    application = models.ForeignKey(Application, null=True, on_delete=models.SET_NULL, related_name="+")
    vehicle = models.ForeignKey("vehicles.SimulatedVehicle", on_delete=models.PROTECT, related_name="+")
    endpoint = models.CharField(max_length=64)
    unit_price_cents = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["period", "vehicle"], name="usage_event_period_vehicle")]
        constraints = [models.UniqueConstraint(fields=["request_id"], name="usage_event_unique_request_id")]


class UsageDaily(models.Model):
    """Requests per (period, day, application, vehicle, endpoint): what the Billing tab reads.

    Plain integer keys rather than foreign keys: `vehicle_key` is 0 for requests that reach no
    vehicle (/vehicles, /user), so the unique key has no NULLs, and history outlives a deleted app.
    """

    period = models.ForeignKey(BillingPeriod, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    application_key = models.PositiveBigIntegerField(default=0)  # the application's id, kept if it is deleted
    vehicle_key = models.PositiveBigIntegerField(default=0)
    endpoint = models.CharField(max_length=64)
    unit_price_cents = models.PositiveIntegerField(default=0)  # what each billable request here cost
    # The contract whose tiers price these requests (0: none, they cost unit_price_cents each).
    contract_key = models.PositiveBigIntegerField(default=0)
    billable = models.PositiveIntegerField(default=0)
    non_billable = models.PositiveIntegerField(default=0)
    amount_cents = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "period",
                    "day",
                    "application_key",
                    "vehicle_key",
                    "endpoint",
                    "unit_price_cents",
                    "contract_key",
                ],
                name="usage_daily_unique",
            )
        ]


class UsageAlert(models.Model):
    """An allowance threshold reached in a period; unique per allowance, so each alert is sent once."""

    class Kind(models.TextChoices):
        REQUESTS_80 = "requests_80", "80% of the request allowance"
        REQUESTS_100 = "requests_100", "the whole request allowance"
        VEHICLES_100 = "vehicles_100", "the active vehicle allowance"

    period = models.ForeignKey(BillingPeriod, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The allowance the threshold was of: an upgrade mid-period raises it, and the new thresholds alert again.
    allowance = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["period", "kind", "allowance"], name="usage_alert_unique")]


class Grant(models.Model):
    """Free usage staff grant a team for a while (the Garage program, DESIGN §1).

    While active (`starts_at <= now < ends_at`), it overrides the plan's terms in the team's
    periods: its request and vehicle allowances, at $0 a request. billing.grants starts and ends it.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="grants")
    program = models.CharField(max_length=32, default="garage")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    request_allowance = models.PositiveIntegerField(help_text="Free billable requests per billing period.")
    vehicle_allowance = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    reminded_14_days_at = models.DateTimeField(null=True, blank=True)
    reminded_1_day_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team"], condition=Q(status="active"), name="grant_one_active_per_team"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="grant_ends_after_start"),
        ]

    def __str__(self):
        return f"{self.get_program_display()} grant for {self.team} until {self.ends_at:%Y-%m-%d}"

    def get_program_display(self) -> str:
        return self.program.title()


class Contract(models.Model):
    """An Enterprise contract: the terms staff agree with a team (DESIGN §1), priced by billing.rating.

    While in force (`started_at` until `ended_at`) it overrides the team's plan: its allowances
    (empty = unlimited), its requests priced by its tiers when a period closes, an optional monthly
    minimum, and how invoices are paid (card, charged automatically; or invoice, net `net_days`,
    marked paid by staff). billing.contracts starts and ends it; once started its terms never
    change (a period's usage is rated by them at close), so staff end it and agree a new one.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        CANCELED = "canceled", "Canceled"

    class Pricing(models.TextChoices):
        GRADUATED = "graduated", "Graduated (each tier's requests at its price)"
        VOLUME = "volume", "Volume (every request at the price of the tier the total reaches)"

    class PaidBy(models.TextChoices):
        CARD = "card", "Card, charged automatically"
        INVOICE = "invoice", "Invoice (bank transfer), marked paid by staff"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=60, blank=True, help_text="The signed order form's reference, if any.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    request_allowance = models.PositiveIntegerField(
        null=True, blank=True, help_text="Billable requests per billing period; empty for unlimited."
    )
    vehicle_allowance = models.PositiveIntegerField(
        null=True, blank=True, help_text="Active vehicles per billing period; empty for unlimited."
    )
    pricing = models.CharField(max_length=10, choices=Pricing.choices, default=Pricing.GRADUATED)
    minimum_cents = models.PositiveBigIntegerField(
        "monthly minimum (cents)", default=0, help_text="Minimum commitment per full billing period; 0 for none."
    )
    paid_by = models.CharField(max_length=8, choices=PaidBy.choices, default=PaidBy.INVOICE)
    net_days = models.PositiveSmallIntegerField(default=30, help_text="Invoice terms: days to pay after issue.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    started_at = models.DateTimeField(null=True, blank=True)  # the moment it took over the team's periods
    ended_at = models.DateTimeField(null=True, blank=True)
    previous_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team"], condition=Q(status="active"), name="contract_one_active_per_team"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="contract_ends_after_start"),
        ]

    def __str__(self):
        return f"Enterprise contract {self.reference or self.pk} for {self.team}"

    @property
    def name(self) -> str:
        return f"Contract {self.reference or self.pk}"

    def priced(self, tiers=None) -> rating.Contract:
        """Its pricing as billing.rating reads it (tiers: the rows, if already fetched)."""
        tiers = self.tiers.all() if tiers is None else tiers
        return rating.Contract(
            mode=self.pricing,
            tiers=tuple(rating.Tier(tier.up_to, tier.unit_price_cents) for tier in tiers),
            minimum_cents=self.minimum_cents,
        )


class ContractTier(models.Model):
    """One price tier of a contract: requests up to `up_to` (cumulative in the period; empty for the last)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="tiers")
    up_to = models.PositiveBigIntegerField(null=True, blank=True, help_text="Empty for the last tier (no limit).")
    unit_price_cents = models.DecimalField(
        "price per request (cents)", max_digits=10, decimal_places=4, help_text="Fractions of a cent are allowed."
    )

    class Meta:
        ordering = [models.F("up_to").asc(nulls_last=True)]
        constraints = [models.UniqueConstraint(fields=["contract", "up_to"], name="contract_tier_unique_bound")]

    def __str__(self):
        return f"up to {self.up_to:,}" if self.up_to is not None else "beyond"


class BillingEvent(models.Model):
    """Append-only audit log of everything that moves money or entitlements (DESIGN §4, issue 4)."""

    class Kind(models.TextChoices):
        PLAN_CHANGED = "plan_changed", "Plan changed"
        PLAN_CHANGE_SCHEDULED = "plan_change_scheduled", "Plan change scheduled"
        PLAN_CHANGE_CANCELED = "plan_change_canceled", "Scheduled plan change canceled"
        LIMIT_REACHED = "limit_reached", "Limit reached"
        PERIOD_OPENED = "period_opened", "Period opened"
        PERIOD_CLOSED = "period_closed", "Period closed"
        PAYMENT = "payment", "Payment"
        CARD_CHANGED = "card_changed", "Card changed"
        SUSPENDED = "suspension", "Suspension started or lifted"
        GRANT = "grant", "Grant"
        INVOICE = "invoice", "Invoice changed by staff"
        CONTRACT = "contract", "Enterprise contract"
        CARRIED = "carried_forward", "Amount carried forward"
        REFUND = "refund", "Refunded in Stripe"
        DISPUTE = "dispute", "Disputed in Stripe"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="billing_events")
    period = models.ForeignKey(BillingPeriod, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.team} at {self.created_at:%Y-%m-%d %H:%M}"


class InvoiceSequence(models.Model):
    """The last invoice number issued in a year: numbers are sequential per deployment (INV-2026-000123)."""

    year = models.PositiveSmallIntegerField(unique=True)
    last = models.PositiveIntegerField(default=0)


class Invoice(models.Model):
    """One invoice per closed period (unique), with the lines rating produced. Issued invoices are not edited."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"  # issued, waiting for its payment
        PAID = "paid", "Paid"
        PAST_DUE = "past_due", "Past due"
        VOID = "void", "Void"
        # Below the smallest amount Stripe charges a card (BILLING_MINIMUM_CHARGE_CENTS): not charged, its amount
        # is added to the team's next invoice (`carried_to`), as Stripe Billing does (billing.carrying).
        CARRIED = "carried", "Carried forward"

    # Named to Stripe by this id (metadata, idempotency keys): unlike the row id, it never repeats, even when a
    # development database is reset while the Stripe account keeps its history.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="invoices")
    period = models.OneToOneField(BillingPeriod, on_delete=models.PROTECT, related_name="invoice")
    number = models.CharField(max_length=20, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    currency = models.CharField(max_length=3, default="usd")
    subtotal_cents = models.BigIntegerField()
    credit_cents = models.BigIntegerField(default=0)
    total_cents = models.BigIntegerField()
    issued_at = models.DateTimeField()
    Collection = Contract.PaidBy
    # How it is paid: charged to the team's card, or (invoice-paid contracts) paid by transfer by `due_at`.
    collection = models.CharField(max_length=8, choices=Collection.choices, default=Collection.CARD)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # A carried-forward invoice: the invoice its amount was added to (empty until the team's next one is issued).
    carried_to = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="carried_from")
    # What Stripe says of its charge after it was paid (billing.webhooks): refunded in Stripe's dashboard (in all, as
    # the charge's amount_refunded), or disputed by the cardholder (the dispute's status and reason, as Stripe names
    # them). The invoice stays "paid": these say what happened to the money since.
    refunded_cents = models.BigIntegerField(default=0)
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_status = models.CharField(max_length=32, blank=True)
    dispute_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(total_cents__gte=0), name="invoice_total_not_negative")]

    def __str__(self):
        return self.number

    @property
    def is_charged_to_card(self) -> bool:
        return self.collection == self.Collection.CARD and self.status == self.Status.OPEN and self.total_cents > 0


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16)  # usage, minimum, credit
    description = models.CharField(max_length=200)
    # A per-request usage line's endpoint family (billing.rating.ENDPOINT_FAMILIES): with the period and the unit
    # price, it names the requests behind the line (the Logs tab). Empty on other lines, and on lines issued before.
    family = models.CharField(max_length=64, blank=True, default="")
    quantity = models.PositiveBigIntegerField()
    unit_price_cents = models.DecimalField(max_digits=14, decimal_places=4)
    amount_cents = models.BigIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_unique_position")]


class Payment(models.Model):
    """One attempt to charge an invoice, written with its parameters before Stripe is called.

    `idempotency_key` (`invoice-<invoice uuid>-attempt-<n>`) names the attempt to Stripe (the PaymentIntent's
    metadata) and is the key every retry of the attempt sends, with the same parameters (the amount, customer
    and card stored here, not the team's card of the moment). Only after Stripe answered a 5xx and no
    PaymentIntent was made does a retry send a new key (`key_generation`), since Stripe replays a saved 5xx
    for the same key. At most one attempt per invoice is in flight (a partial unique constraint).
    """

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    # The failure code of a charge the bank wants the Owner to authenticate (3-D Secure): only they can, on the
    # invoice's pay page, so dunning does not retry it.
    NEEDS_AUTHENTICATION = "authentication_required"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    attempt = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    amount_cents = models.BigIntegerField()
    # The attempt's parameters, fixed when it begins: a resend under the same key sends exactly these.
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    payment_method_id = models.CharField(max_length=64, blank=True)
    key_generation = models.PositiveSmallIntegerField(default=0)
    stripe_payment_intent_id = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    # Made by the Owner on the invoice's pay page rather than by the schedule: no past-due email when it
    # fails (they are looking at the page), and dunning's retry schedule counts only scheduled attempts.
    on_session = models.BooleanField(default=False)
    # The run asking Stripe about this attempt (billing.payments): a committed lease, not a held row lock, so no
    # transaction stays open across the call. Another run takes the attempt only once `claimed_until` has passed.
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "attempt"], name="payment_unique_attempt"),
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(status="processing"), name="payment_one_in_flight_per_invoice"
            ),
        ]

    @property
    def stripe_idempotency_key(self) -> str:
        """The key sent to Stripe now: the attempt's own, or a fresh one after a replayed 5xx."""
        if self.key_generation == 0:
            return self.idempotency_key
        return f"{self.idempotency_key}-retry-{self.key_generation}"


class StripeEvent(models.Model):
    """A webhook event from Stripe, stored once by its id: duplicates and replays are recognised, not redone."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class BillingDetails(models.Model):
    """Who the team's invoices are made out to (one row per team, edited by Owners in the Billing tab)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="billing_details")
    company_name = models.CharField(max_length=200)
    address = models.TextField(max_length=1000, help_text="As it should appear on invoices, one line per line.")
    tax_id = models.CharField("Tax ID", max_length=50, blank=True, help_text="VAT, GST or EIN number, if any.")
    billing_email = models.EmailField(blank=True, help_text="Where receipts go, if not to the Owners.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "billing details"

    def __str__(self):
        return f"{self.company_name} ({self.team})"
