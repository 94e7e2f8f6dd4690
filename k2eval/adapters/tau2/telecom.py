"""Telecom domain: the agent's account tools over `db.toml` and the user's phone over
`user_db.toml` (dual control: the user simulator acts on the device when the agent asks).

Semantics follow tau2-bench: today is 2025-02-25; the phone's connection is recomputed by a
network search after each relevant change; mobile data fails in airplane mode, without
signal or service, abroad without roaming (device setting and line), with data off or with
the data allowance used up; the speed test is the midpoint of the technology's range times
the signal factor (VPN with poor server x0.1, data saver x0.2). After every call the user's
surroundings follow the line (active, roaming allowed, allowance, payment requests).
One deliberate difference: a new draft bill gets a deterministic id instead of a random one.
"""

from __future__ import annotations

import datetime
import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from k2eval.adapters.tau2.toolkit import AgentToolkit, Toolkit, tool

TODAY = datetime.date(2025, 2, 25)


# --- Agent side: accounts, lines, bills ---------------------------------------------------

class Address(BaseModel):
    street: str
    city: str
    state: str
    zip_code: str


class Plan(BaseModel):
    plan_id: str
    name: str
    data_limit_gb: float
    price_per_month: float
    data_refueling_price_per_gb: float


class Device(BaseModel):
    device_id: str
    device_type: Literal["phone", "router", "tablet", "watch", "other"]
    model: str
    imei: str | None = None
    is_esim_capable: bool
    activated: bool = False
    activation_date: datetime.datetime | None = None
    last_esim_transfer_date: datetime.datetime | None = None


class LineStatus(StrEnum):
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    PENDING_ACTIVATION = "Pending Activation"
    CLOSED = "Closed"


class Line(BaseModel):
    line_id: str
    phone_number: str
    status: LineStatus = LineStatus.PENDING_ACTIVATION
    plan_id: str
    device_id: str | None = None
    data_used_gb: float = 0.0
    data_refueling_gb: float = 0.0
    roaming_enabled: bool = False
    contract_end_date: datetime.date | None = None
    last_plan_change_date: datetime.date | None = None
    last_sim_replacement_date: datetime.date | None = None
    suspension_start_date: datetime.date | None = None


class LineItem(BaseModel):
    description: str
    amount: float
    date: datetime.date
    item_type: str


class BillStatus(StrEnum):
    DRAFT = "Draft"
    ISSUED = "Issued"
    AWAITING_PAYMENT = "Awaiting Payment"
    PAID = "Paid"
    OVERDUE = "Overdue"
    DISPUTED = "Disputed"


class Bill(BaseModel):
    bill_id: str
    customer_id: str
    period_start: datetime.date
    period_end: datetime.date
    issue_date: datetime.date
    total_due: float
    due_date: datetime.date
    line_items: list[LineItem] = Field(default_factory=list)
    status: BillStatus = BillStatus.DRAFT


class PaymentMethod(BaseModel):
    method_type: Literal["Credit Card", "Debit Card", "PayPal"]
    account_number_last_4: str
    expiration_date: str


class Customer(BaseModel):
    customer_id: str
    full_name: str
    date_of_birth: str
    email: str
    phone_number: str
    address: Address
    account_status: Literal["Active", "Suspended", "Pending Verification", "Closed"] = \
        "Pending Verification"
    payment_methods: list[PaymentMethod] = Field(default_factory=list)
    line_ids: list[str] = Field(default_factory=list)
    bill_ids: list[str] = Field(default_factory=list)
    created_at: datetime.datetime = datetime.datetime(2025, 1, 1)
    last_extension_date: datetime.date | None = None
    goodwill_credit_used_this_year: float = 0.0


class TelecomDB(BaseModel):
    plans: list[Plan] = Field(default_factory=list)
    customers: list[Customer] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    bills: list[Bill] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)


def _first_of_next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)


class TelecomTools(AgentToolkit[TelecomDB]):
    """The telecom agent's tools, plus the functions tasks use to set up and check state."""

    def _find(self, items: list[Any], attr: str, value: str, kind: str) -> Any:
        for item in items:
            if getattr(item, attr) == value:
                return item
        raise ValueError(f"{kind} with ID {value} not found")

    def _line(self, line_id: str) -> Line:
        return self._find(self.db.lines, "line_id", line_id, "Line")

    def _plan(self, plan_id: str) -> Plan:
        return self._find(self.db.plans, "plan_id", plan_id, "Plan")

    def _bill(self, bill_id: str) -> Bill:
        return self._find(self.db.bills, "bill_id", bill_id, "Bill")

    def line_by_phone(self, phone_number: str) -> Line:
        for line in self.db.lines:
            if line.phone_number == phone_number:
                return line
        raise ValueError(f"Line with phone number {phone_number} not found")

    def _customer_line(self, customer_id: str, line_id: str) -> Line:
        customer = self.get_customer_by_id(customer_id)
        if line_id not in customer.line_ids:
            raise ValueError(f"Line {line_id} not found for customer {customer_id}")
        return self._line(line_id)

    def bills_awaiting_payment(self, customer: Customer) -> list[Bill]:
        return [b for b in (self._bill(i) for i in customer.bill_ids)
                if b.status == BillStatus.AWAITING_PAYMENT]

    def set_bill_paid(self, bill_id: str) -> None:
        self._bill(bill_id).status = BillStatus.PAID

    def _charge(self, customer_id: str, amount: float, description: str) -> None:
        """Add a line item to the customer's draft bill, opening one for next month if needed."""
        customer = self.get_customer_by_id(customer_id)
        draft = next((b for b in (self._bill(i) for i in customer.bill_ids)
                      if b.status == BillStatus.DRAFT), None)
        if draft is None:
            start = _first_of_next_month(TODAY)
            seed = f"{customer_id}:{len(self.db.bills)}".encode()
            draft = Bill(bill_id="B" + hashlib.sha256(seed).hexdigest()[:8],
                         customer_id=customer_id, period_start=start,
                         period_end=_first_of_next_month(start) - datetime.timedelta(days=1),
                         issue_date=start, total_due=0, due_date=start + datetime.timedelta(days=14),
                         status=BillStatus.DRAFT)
            self.db.bills.append(draft)
            customer.bill_ids.append(draft.bill_id)
        draft.line_items.append(LineItem(description=description, amount=amount, date=TODAY,
                                         item_type="Credit" if amount < 0 else "Charge"))
        draft.total_due += amount

    @tool(mutates=False)
    def get_customer_by_phone(self, phone_number: str) -> Customer:
        """Find the customer whose contact number, or one of whose lines, is this phone number.

        Args:
            phone_number: The phone number to look up.
        """
        for customer in self.db.customers:
            if customer.phone_number == phone_number:
                return customer
            for line_id in customer.line_ids:
                if self._line(line_id).phone_number == phone_number:
                    return customer
        raise ValueError(f"Customer with phone number {phone_number} not found")

    @tool(mutates=False)
    def get_customer_by_id(self, customer_id: str) -> Customer:
        """Get a customer by customer id.

        Args:
            customer_id: The customer id, such as 'C1001'.
        """
        return self._find(self.db.customers, "customer_id", customer_id,
                          "Customer")

    @tool(mutates=False)
    def get_customer_by_name(self, full_name: str, dob: str) -> list[Customer]:
        """Find customers by full name and date of birth (several may match).

        Args:
            full_name: The customer's full name.
            dob: The date of birth, YYYY-MM-DD.
        """
        return [c for c in self.db.customers
                if c.full_name.lower() == full_name.lower() and c.date_of_birth == dob]

    @tool(mutates=False)
    def get_details_by_id(self, id: str) -> BaseModel:
        """Get the record of a line (L...), device (D...), bill (B...), customer (C...) or plan (P...).

        Args:
            id: The id of the record.
        """
        if id.startswith("L"):
            return self._line(id)
        if id.startswith("D"):
            return self._find(self.db.devices, "device_id", id, "Device")
        if id.startswith("B"):
            return self._bill(id)
        if id.startswith("C"):
            return self.get_customer_by_id(id)
        if id.startswith("P"):
            return self._plan(id)
        raise ValueError(f"Unknown ID format or type: {id}")

    @tool(mutates=True)
    def suspend_line(self, customer_id: str, line_id: str, reason: str) -> dict[str, Any]:
        """Suspend an active line (at most 6 months; a $5/month holding fee applies).

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
            reason: Why the line is suspended.
        """
        line = self._customer_line(customer_id, line_id)
        if line.status != LineStatus.ACTIVE:
            raise ValueError("Line must be active to suspend")
        line.status = LineStatus.SUSPENDED
        line.suspension_start_date = TODAY
        return {"message": "Line suspended successfully. $5/month holding fee will apply.",
                "line": line}

    @tool(mutates=True)
    def resume_line(self, customer_id: str, line_id: str) -> dict[str, Any]:
        """Resume a suspended (or pending-activation) line.

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
        """
        line = self._customer_line(customer_id, line_id)
        if line.status not in (LineStatus.SUSPENDED, LineStatus.PENDING_ACTIVATION):
            raise ValueError("Line must be suspended to resume")
        line.status = LineStatus.ACTIVE
        line.suspension_start_date = None
        return {"message": "Line resumed successfully", "line": line}

    @tool(mutates=False)
    def get_bills_for_customer(self, customer_id: str, limit: int = 12) -> list[Bill]:
        """List a customer's bills, newest issue date first.

        Args:
            customer_id: The customer id.
            limit: The most bills to return.
        """
        customer = self.get_customer_by_id(customer_id)
        bills = sorted((self._bill(i) for i in customer.bill_ids),
                       key=lambda b: b.issue_date, reverse=True)
        return bills[:limit]

    @tool(mutates=True)
    def send_payment_request(self, customer_id: str, bill_id: str) -> str:
        """Ask the customer to pay one of their bills (status becomes Awaiting Payment). Fails
        while another bill awaits payment; does not check whether the bill is already paid.

        Args:
            customer_id: The id of the customer who owns the bill.
            bill_id: The id of the bill.
        """
        customer = self.get_customer_by_id(customer_id)
        if self.bills_awaiting_payment(customer):
            raise ValueError("A bill is already awaiting payment for this customer")
        if bill_id not in customer.bill_ids:
            raise ValueError(f"Bill {bill_id} not found for customer {customer_id}")
        self._bill(bill_id).status = BillStatus.AWAITING_PAYMENT
        return f"Payment request sent to the customer for bill {bill_id}"

    @tool(mutates=False)
    def get_data_usage(self, customer_id: str, line_id: str) -> dict[str, Any]:
        """Get a line's data used this billing cycle, its refueled data, its plan's limit and
        the cycle's end date.

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
        """
        line = self._customer_line(customer_id, line_id)
        plan = self._plan(line.plan_id)
        return {"line_id": line_id, "data_used_gb": line.data_used_gb,
                "data_limit_gb": plan.data_limit_gb, "data_refueling_gb": line.data_refueling_gb,
                "cycle_end_date": _first_of_next_month(TODAY) - datetime.timedelta(days=1)}

    @tool(mutates=True)
    def enable_roaming(self, customer_id: str, line_id: str) -> str:
        """Enable international roaming on a line.

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
        """
        line = self._customer_line(customer_id, line_id)
        if line.roaming_enabled:
            return "Roaming was already enabled"
        line.roaming_enabled = True
        return "Roaming enabled successfully"

    @tool(mutates=True)
    def disable_roaming(self, customer_id: str, line_id: str) -> str:
        """Disable international roaming on a line.

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
        """
        line = self._customer_line(customer_id, line_id)
        if not line.roaming_enabled:
            return "Roaming was already disabled"
        line.roaming_enabled = False
        return "Roaming disabled successfully"

    @tool(mutates=True)
    def refuel_data(self, customer_id: str, line_id: str, gb_amount: float) -> dict[str, Any]:
        """Add data to a line for this cycle, charged on the customer's next bill at the plan's
        refueling price.

        Args:
            customer_id: The id of the customer who owns the line.
            line_id: The id of the line.
            gb_amount: Gigabytes to add.
        """
        line = self._customer_line(customer_id, line_id)
        if gb_amount <= 0:
            raise ValueError("Refuel amount must be positive")
        plan = self._plan(line.plan_id)
        charge = gb_amount * plan.data_refueling_price_per_gb
        line.data_refueling_gb += gb_amount
        self._charge(customer_id, charge,
                     f"Data refueling: {gb_amount} GB at ${plan.data_refueling_price_per_gb}/GB")
        return {"message": f"Successfully added {gb_amount} GB of data for line {line_id} "
                           f"for ${charge:.2f}",
                "new_data_refueling_gb": line.data_refueling_gb, "charge": charge}

    # Task set-up and assertions (not tools).

    def set_data_usage(self, customer_id: str, line_id: str, data_used_gb: float) -> str:
        self._customer_line(customer_id, line_id).data_used_gb = data_used_gb
        return f"Data usage set to {data_used_gb} GB for line {line_id}"

    def suspend_line_for_overdue_bill(self, customer_id: str, line_id: str, new_bill_id: str,
                                      contract_ended: bool) -> str:
        line = self._line(line_id)
        if line.status != LineStatus.ACTIVE:
            raise ValueError("Line must be active to suspend for unpaid bill")
        amount = self._plan(line.plan_id).price_per_month
        customer = self.get_customer_by_id(customer_id)
        if any(self._bill(i).status == BillStatus.OVERDUE for i in customer.bill_ids):
            raise ValueError("Customer already has an overdue bill")
        last_day = TODAY.replace(day=1) - datetime.timedelta(days=1)
        first_day = last_day.replace(day=1)
        bill = Bill(bill_id=new_bill_id, customer_id=customer_id, period_start=first_day,
                    period_end=last_day, issue_date=first_day, total_due=amount,
                    due_date=first_day + datetime.timedelta(days=14), status=BillStatus.OVERDUE,
                    line_items=[LineItem(description=f"Charge for line {line.line_id}",
                                         amount=amount, date=TODAY, item_type="Charge")])
        self.db.bills.append(bill)
        customer.bill_ids.append(new_bill_id)
        line.status = LineStatus.SUSPENDED
        line.suspension_start_date = TODAY
        if contract_ended:
            line.contract_end_date = last_day
        return f"Line {line_id} suspended for unpaid bill {new_bill_id}. Contract ended: {contract_ended}"

    def assert_data_refueling_amount(self, customer_id: str, line_id: str,
                                     expected_amount: float) -> bool:
        line = self._customer_line(customer_id, line_id)
        return abs(line.data_refueling_gb - expected_amount) < 1e-6

    def assert_line_status(self, customer_id: str, line_id: str, expected_status: str) -> bool:
        return self._customer_line(customer_id, line_id).status == LineStatus(expected_status)

    def assert_no_overdue_bill(self, overdue_bill_id: str) -> bool:
        try:
            return self._bill(overdue_bill_id).status == BillStatus.PAID
        except ValueError:
            return True


# --- User side: the phone and its surroundings ---------------------------------------------

SignalStrength = Literal["none", "poor", "fair", "good", "excellent"]
Technology = Literal["none", "2G", "3G", "4G", "5G"]
ModePreference = Literal["4g_5g_preferred", "4g_only", "3g_only", "2g_only"]
NetworkStatus = Literal["connected", "searching", "no_service", "emergency_only"]


class APNSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apn_name: Annotated[Literal["internet", "broken"], Field(description="The APN name.")] = \
        "internet"
    reset_at_reboot: Annotated[bool, Field(description="Reset to defaults at next reboot.")] = False
    mms_apn: Annotated[str | None, Field(description="The APN used for MMS.")] = "mms"
    mmsc_url: Annotated[str | None, Field(description="The MMS center URL.")] = \
        "http://mms.carrier.com/mms/wapenc"
    mms_proxy: Annotated[str | None, Field(description="The MMS proxy address.")] = None
    mms_port: Annotated[int | None, Field(description="The MMS proxy port.")] = None


class VpnDetails(BaseModel):
    server_address: str | None = None
    protocol: str | None = None
    server_performance: Literal["unknown", "poor", "fair", "good", "excellent"] = "unknown"


class AppPermissions(BaseModel):
    sms: bool = False
    storage: bool = False
    phone: bool = False
    network: bool = False


class AppStatus(BaseModel):
    app_name: str
    permissions: AppPermissions = Field(default_factory=AppPermissions)


def _default_apps() -> dict[str, AppStatus]:
    return {"messaging": AppStatus(app_name="messaging",
                                   permissions=AppPermissions(sms=True, storage=True, phone=True)),
            "browser": AppStatus(app_name="browser",
                                 permissions=AppPermissions(network=True, storage=True))}


class Phone(BaseModel):
    sim_card_status: Literal["active", "missing", "locked_pin", "locked_puk"] = "active"
    sim_card_missing: bool = False
    airplane_mode: bool = False
    network_signal_strength: SignalStrength = "good"
    network_technology_connected: Technology = "5G"
    network_connection_status: NetworkStatus = "connected"
    battery_level: int = 80
    data_enabled: bool = True
    roaming_enabled: bool = False
    network_mode_preference: ModePreference = "4g_5g_preferred"
    active_apn_settings: APNSettings = Field(default_factory=lambda: APNSettings())
    wifi_enabled: bool = False
    wifi_connected: bool = False
    wifi_ssid: str | None = None
    wifi_signal_strength: SignalStrength = "none"
    wifi_calling_enabled: bool = False
    wifi_calling_mms_over_wifi: bool = False
    data_saver_mode: bool = False
    vpn_enabled_setting: bool = False
    vpn_connected: bool = False
    vpn_details: VpnDetails | None = None
    app_statuses: dict[str, AppStatus] = Field(default_factory=_default_apps)


class PaymentRequest(BaseModel):
    bill_id: str
    amount_due: float
    paid: bool = False


def _default_signal() -> dict[str, SignalStrength]:
    return {"2G": "poor", "3G": "fair", "4G": "good", "5G": "excellent"}


class Surroundings(BaseModel):
    name: str | None = None
    phone_number: str | None = None
    is_abroad: bool = False
    roaming_allowed: bool = False
    signal_strength: dict[str, SignalStrength] = Field(default_factory=_default_signal)
    mobile_data_usage_exceeded: bool = False
    line_active: bool = True
    payment_request: PaymentRequest | None = None


class TelecomUserDB(BaseModel):
    device: Phone = Field(default_factory=Phone)
    surroundings: Surroundings = Field(default_factory=Surroundings)


SPEED_RANGES = {"2G": (0.1, 0.4), "3G": (1.0, 5.0), "4G": (10.0, 100.0), "5G": (50.0, 500.0)}
SIGNAL_FACTORS = {"poor": 0.2, "fair": 0.5, "good": 0.8, "excellent": 1.0}
SIGNAL_ICONS = {"none": "📵 No Signal", "poor": "📶¹ Poor", "fair": "📶² Fair",
                "good": "📶³ Good", "excellent": "📶⁴ Excellent"}
SPEED_ADVICE = {
    "Very Poor": "Connection is very slow. Basic web browsing might be difficult.",
    "Poor": "Connection is slow. Web browsing may be sluggish, streaming difficult.",
    "Fair": "Connection is okay for web browsing and some standard definition streaming.",
    "Good": "Connection is good for most activities, including HD streaming.",
    "Excellent": "Connection is very fast."}
MODE_TECHNOLOGY: dict[str, Technology] = {"4g_only": "4G", "3g_only": "3G", "2g_only": "2G"}
SIM_TEXT = {"active": "Your SIM card is active and working.",
            "missing": "No SIM card detected in the phone.",
            "locked_pin": "The SIM card is locked with a PIN code.",
            "locked_puk": "The SIM card is locked with a PUK code."}


class TelecomUserTools(Toolkit[TelecomUserDB]):
    """What the user can do on and see of their phone, plus task set-up and assertions."""

    @property
    def phone(self) -> Phone:
        return self.db.device

    @property
    def place(self) -> Surroundings:
        return self.db.surroundings

    def _with_status_bar(self, text: str) -> str:
        return f"{text}\nStatus Bar: {self._status_bar()}"

    def _status_bar(self) -> str:
        phone = self.phone
        parts = []
        if phone.airplane_mode:
            parts.append("✈️ Airplane Mode")
        else:
            parts.append(SIGNAL_ICONS.get(phone.network_signal_strength, "📵 No Signal"))
            if phone.network_technology_connected != "none":
                parts.append(phone.network_technology_connected)
            if phone.data_enabled and phone.network_technology_connected != "none":
                parts.append("📱 Data Enabled")
                if phone.data_saver_mode:
                    parts.append("🔽 Data Saver")
            else:
                parts.append("📵 Data Disabled")
        if phone.wifi_enabled and phone.wifi_connected:
            parts.append(f"📡 Connected to {phone.wifi_ssid}" if phone.wifi_ssid else "📡 Enabled")
        if phone.vpn_connected:
            parts.append("🔒 VPN Connected")
        parts.append(f"🔋 {phone.battery_level}%")
        return " | ".join(parts)

    def _sim_status(self) -> str:
        return "missing" if self.phone.sim_card_missing else self.phone.sim_card_status

    def simulate_network_search(self) -> None:
        """Recompute service, technology and signal from SIM, preference and surroundings."""
        phone = self.phone
        if self._sim_status() == "active":
            phone.network_connection_status = "connected"
            preference = phone.network_mode_preference
            if preference == "4g_5g_preferred":
                five_g = self.place.signal_strength.get("5G", "none")
                technology: Technology = "4G" if five_g == "none" else "5G"
            else:
                technology = MODE_TECHNOLOGY.get(preference, "4G")
            phone.network_technology_connected = technology
            phone.network_signal_strength = self.place.signal_strength.get(technology, "none")
        else:
            self._no_service()
        if (phone.airplane_mode or phone.active_apn_settings.apn_name == "broken"
                or not self.place.line_active):
            self._no_service()

    def _no_service(self) -> None:
        self.phone.network_connection_status = "no_service"
        self.phone.network_technology_connected = "none"
        self.phone.network_signal_strength = "none"

    def mobile_data_working(self) -> bool:
        phone, place = self.phone, self.place
        if phone.airplane_mode or phone.network_signal_strength == "none":
            return False
        if phone.network_connection_status == "no_service":
            return False
        if place.is_abroad and (not phone.roaming_enabled or not place.roaming_allowed):
            return False
        return phone.data_enabled and not place.mobile_data_usage_exceeded

    def speed_test(self) -> tuple[float | None, str]:
        if not self.mobile_data_working():
            return None, "No Connection"
        phone = self.phone
        factor = 1.0
        if (phone.vpn_connected and phone.vpn_details
                and phone.vpn_details.server_performance == "poor"):
            factor = 0.1
        if phone.data_saver_mode:
            factor *= 0.2
        low, high = SPEED_RANGES.get(phone.network_technology_connected, (0.0, 0.0))
        speed = round((low + high) / 2.0 * SIGNAL_FACTORS.get(phone.network_signal_strength, 0.0)
                      * factor, 2)
        for bound, label in ((1, "Very Poor"), (5, "Poor"), (25, "Fair"), (100, "Good")):
            if speed < bound:
                return speed, label
        return speed, "Excellent"

    def can_send_mms_now(self) -> bool:
        phone = self.phone
        if not self.mobile_data_working() or phone.network_technology_connected == "2G":
            return False
        if phone.wifi_calling_enabled and phone.wifi_calling_mms_over_wifi:
            return False
        if phone.active_apn_settings.mmsc_url is None:
            return False
        app = phone.app_statuses.get("messaging")
        return app is not None and app.permissions.storage and app.permissions.sms

    def _flip(self, attr: str, *, search: bool) -> bool:
        value = not getattr(self.phone, attr)
        setattr(self.phone, attr, value)
        if search:
            self.simulate_network_search()
        return value

    def _toggle_airplane(self) -> bool:
        phone = self.phone
        turning_on = not phone.airplane_mode
        phone.airplane_mode = turning_on
        if not turning_on:
            phone.network_connection_status = "searching"
        if turning_on or phone.wifi_enabled:
            phone.wifi_connected, phone.wifi_ssid, phone.wifi_signal_strength = False, None, "none"
        if turning_on and phone.vpn_connected:
            phone.vpn_connected, phone.vpn_details = False, None
        self.simulate_network_search()
        return phone.airplane_mode

    def _set_flag(self, flip: Any, want: bool) -> None:
        if flip() != want:
            flip()

    # Tools the user simulator can call.

    @tool(mutates=False)
    def check_status_bar(self) -> str:
        """Show the icons in the phone's status bar: signal, network type, mobile data, Wi-Fi,
        VPN and battery."""
        return f"Status Bar: {self._status_bar()}"

    @tool(mutates=False)
    def check_network_status(self) -> str:
        """Show the phone's connection to cellular networks and Wi-Fi: airplane mode, SIM,
        service, signal, network type, mobile data and data roaming."""
        phone = self.phone
        lines = [f"Airplane Mode: {'ON' if phone.airplane_mode else 'OFF'}",
                 f"SIM Card Status: {self._sim_status()}",
                 f"Cellular Connection: {phone.network_connection_status}",
                 f"Cellular Signal: {phone.network_signal_strength}",
                 f"Cellular Network Type: {phone.network_technology_connected}",
                 f"Mobile Data Enabled: {'Yes' if phone.data_enabled else 'No'}",
                 f"Data Roaming Enabled: {'Yes' if phone.roaming_enabled else 'No'}",
                 f"Wi-Fi Radio: {'ON' if phone.wifi_enabled else 'OFF'}",
                 f"Wi-Fi Connected: {'Yes' if phone.wifi_connected else 'No'}"]
        if phone.wifi_connected:
            lines.append(f"Connected Wi-Fi Network: {phone.wifi_ssid}")
        return "\n".join(lines)

    @tool(mutates=False)
    def check_network_mode_preference(self) -> str:
        """Show which kind of cellular network the phone prefers."""
        return f"Network Mode Preference: {self.phone.network_mode_preference}"

    @tool(mutates=True)
    def set_network_mode_preference(self, mode: str) -> str:
        """Choose which kind of cellular network the phone prefers: '4g_5g_preferred',
        '4g_only', '3g_only' or '2g_only'. Faster networks use more battery.

        Args:
            mode: The preferred network mode.
        """
        valid = ("4g_5g_preferred", "4g_only", "3g_only", "2g_only")
        if mode not in valid:
            return self._with_status_bar(f"Failed to set network mode: '{mode}' is not a valid "
                                         f"option. Please use one of: {', '.join(valid)}")
        self.phone.network_mode_preference = mode  # type: ignore[assignment]
        self.simulate_network_search()
        return self._with_status_bar(f"Preferred Network Mode set to: {mode}")

    @tool(mutates=False)
    def run_speed_test(self) -> str:
        """Measure the current mobile internet download speed and say what it is good for."""
        speed, label = self.speed_test()
        if speed is None:
            return f"Speed test failed: {label}."
        return f"Speed Test Result: {speed:.2f} Mbps ({label}). {SPEED_ADVICE[label]}"

    @tool(mutates=True)
    def toggle_airplane_mode(self) -> str:
        """Turn airplane mode on or off; when on, cellular, Wi-Fi and Bluetooth are off."""
        state = self._toggle_airplane()
        return self._with_status_bar(f"Airplane Mode is now {'ON' if state else 'OFF'}.")

    @tool(mutates=False)
    def check_sim_status(self) -> str:
        """Show whether the SIM card works, is missing, or is locked by a PIN or PUK."""
        return SIM_TEXT[self._sim_status()]

    @tool(mutates=True)
    def reseat_sim_card(self) -> str:
        """Take the SIM card out and put it back in."""
        self.phone.sim_card_missing = False
        self.simulate_network_search()
        return self._with_status_bar("SIM card re-seated successfully.")

    @tool(mutates=True)
    def toggle_data(self) -> str:
        """Turn mobile data on or off (cellular internet when Wi-Fi is unavailable)."""
        state = self._flip("data_enabled", search=True)
        return self._with_status_bar(f"Mobile Data is now {'ON' if state else 'OFF'}.")

    @tool(mutates=True)
    def toggle_roaming(self) -> str:
        """Turn data roaming on or off (data use outside the carrier's coverage area)."""
        state = self._flip("roaming_enabled", search=True)
        return self._with_status_bar(f"Data Roaming is now {'ON' if state else 'OFF'}.")

    @tool(mutates=False)
    def check_data_restriction_status(self) -> str:
        """Show whether data-limiting features (Data Saver) are on."""
        if self.phone.data_saver_mode:
            return "Data Saver mode is ON (limits data usage)."
        return "Data Saver mode is OFF."

    @tool(mutates=True)
    def toggle_data_saver_mode(self) -> str:
        """Turn Data Saver on or off; when on, data use and speed are reduced."""
        state = self._flip("data_saver_mode", search=False)
        return self._with_status_bar(f"Data Saver Mode is now {'ON' if state else 'OFF'}.")

    @tool(mutates=False)
    def check_apn_settings(self) -> str:
        """Show the APN settings used for mobile data: APN name and MMS center URL."""
        apn = self.phone.active_apn_settings
        return (f"Current APN Name: {apn.apn_name or 'Not Set'}\n"
                f"MMSC URL (for picture messages): {apn.mmsc_url or 'Not Set'}\n"
                "(These are technical settings, usually best left unchanged.)")

    @tool(mutates=True)
    def set_apn_settings(self, apn_settings: APNSettings) -> str:
        """Replace the phone's APN settings.

        Args:
            apn_settings: The new APN settings.
        """
        if isinstance(apn_settings, dict):  # as tau2: a JSON object becomes the model
            apn_settings = APNSettings(**apn_settings)
        self.phone.active_apn_settings = apn_settings
        self.simulate_network_search()
        return self._with_status_bar(f"APN settings set to: {apn_settings.apn_name}")

    @tool(mutates=True)
    def reset_apn_settings(self) -> str:
        """Reset the APN settings to the defaults (takes effect at the next reboot)."""
        self.phone.active_apn_settings.reset_at_reboot = True
        self.simulate_network_search()
        return self._with_status_bar("APN settings will reset at reboot.")

    @tool(mutates=False)
    def check_wifi_status(self) -> str:
        """Show whether Wi-Fi is on, which network it is connected to, and its signal."""
        phone = self.phone
        if not phone.wifi_enabled:
            return "Wi-Fi is turned OFF."
        if phone.wifi_connected:
            return (f"Wi-Fi is ON and connected to '{phone.wifi_ssid}'. "
                    f"Signal strength: {phone.wifi_signal_strength}.")
        return "Wi-Fi is ON but not connected to any network."

    @tool(mutates=True)
    def toggle_wifi(self) -> str:
        """Turn the Wi-Fi radio on or off."""
        phone = self.phone
        if phone.airplane_mode:
            return self._with_status_bar("Cannot change Wi-Fi settings while Airplane Mode is ON.")
        phone.wifi_enabled = not phone.wifi_enabled
        if not phone.wifi_enabled:
            phone.wifi_connected, phone.wifi_ssid, phone.wifi_signal_strength = False, None, "none"
        return self._with_status_bar(f"Wi-Fi is now {'ON' if phone.wifi_enabled else 'OFF'}.")

    @tool(mutates=False)
    def check_wifi_calling_status(self) -> str:
        """Show whether Wi-Fi Calling (calls over Wi-Fi instead of cellular) is on."""
        return f"Wi-Fi Calling is currently turned {'ON' if self.phone.wifi_calling_enabled else 'OFF'}."

    @tool(mutates=True)
    def toggle_wifi_calling(self) -> str:
        """Turn Wi-Fi Calling on or off."""
        state = self._flip("wifi_calling_enabled", search=False)
        return self._with_status_bar(f"Wi-Fi Calling is now {'ON' if state else 'OFF'}.")

    @tool(mutates=False)
    def check_vpn_status(self) -> str:
        """Show whether a VPN is on and connected, with its connection details."""
        phone = self.phone
        if phone.vpn_connected:
            if phone.vpn_details:
                return f"VPN is ON and connected. Details: {phone.vpn_details.model_dump()}"
            return "VPN is ON and connected (no specific details available)."
        if phone.vpn_enabled_setting:
            return "VPN is turned ON in settings, but currently not connected."
        return "VPN is turned OFF."

    @tool(mutates=True)
    def connect_vpn(self) -> str:
        """Connect to the VPN."""
        if self.phone.vpn_connected:
            return "VPN already connected."
        self.phone.vpn_connected = True
        self.phone.vpn_details = VpnDetails(server_address="192.168.1.1", protocol="OpenVPN",
                                            server_performance="excellent")
        return self._with_status_bar("VPN connected successfully.")

    @tool(mutates=True)
    def disconnect_vpn(self) -> str:
        """Disconnect the active VPN connection."""
        if not self.phone.vpn_connected:
            return self._with_status_bar("No active VPN connection to disconnect.")
        self.phone.vpn_connected, self.phone.vpn_details = False, None
        return self._with_status_bar("VPN disconnected successfully.")

    @tool(mutates=False)
    def check_installed_apps(self) -> str:
        """List the apps installed on the phone."""
        names = ", ".join(self.phone.app_statuses)
        return f"The following apps are installed on the phone: {names}"

    def _granted(self, app: AppStatus) -> list[str]:
        return [name.replace("_", " ").lower()
                for name, allowed in app.permissions.model_dump().items() if allowed]

    @tool(mutates=False)
    def check_app_status(self, app_name: str) -> str:
        """Show an app's details, including its permissions.

        Args:
            app_name: The app's name, such as 'messaging'.
        """
        app = self.phone.app_statuses.get(app_name)
        if app is None:
            return f"App '{app_name}' not found on this phone."
        granted = self._granted(app)
        lines = [f"Status for App: {app_name}"]
        if granted:
            lines += [" - Permissions Granted:", *[f"   - {p}" for p in granted]]
        else:
            lines.append(" - Permissions: None granted.")
        return "\n".join(lines)

    @tool(mutates=False)
    def check_app_permissions(self, app_name: str) -> str:
        """Show which permissions an app has (storage, sms, phone, network).

        Args:
            app_name: The app's name, such as 'messaging'.
        """
        app = self.phone.app_statuses.get(app_name)
        if app is None:
            return f"App '{app_name}' not found on this phone."
        granted = self._granted(app)
        if not granted:
            return f"App '{app_name}' currently has no permissions granted."
        return f"App '{app_name}' has permission for: {', '.join(granted)}."

    @tool(mutates=True)
    def grant_app_permission(self, app_name: str, permission: str) -> str:
        """Give an app a permission it needs to work.

        Args:
            app_name: The app's name, such as 'messaging'.
            permission: The permission, in lowercase, such as 'storage'.
        """
        app = self.phone.app_statuses.get(app_name)
        permission = permission.lower()
        if app is None:
            message = f"Error. App '{app_name}' not found. Cannot grant permission."
        elif permission not in AppPermissions.model_fields:
            available = list(AppPermissions.model_fields)
            message = (f"Error. Permission '{permission}' not tracked for app '{app_name}', "
                       f"available permissions: {available}")
        else:
            setattr(app.permissions, permission, True)
            message = f"Success. Permission '{permission}' granted to app '{app_name}'."
        return self._with_status_bar(message)

    @tool(mutates=False)
    def can_send_mms(self) -> str:
        """Check whether the messaging app can send MMS (picture) messages."""
        if self.can_send_mms_now():
            return "Your messaging app can send MMS messages."
        return "Your messaging app cannot send MMS messages."

    @tool(mutates=True)
    def reboot_device(self) -> str:
        """Restart the phone, which refreshes its services and connections."""
        lines = []
        if self.phone.active_apn_settings.reset_at_reboot:
            lines.append("Resetting APN settings...")
            self.phone.active_apn_settings = APNSettings()
        lines.append("Restarting network services...")
        self.phone.network_connection_status = "searching"
        self.simulate_network_search()
        return self._with_status_bar("\n".join(lines))

    @tool(mutates=False)
    def check_payment_request(self) -> str:
        """Check whether the agent has sent a payment request."""
        request = self.place.payment_request
        if request is None:
            return "No payment request has been made."
        return f"You have a payment request for bill {request.bill_id} of {request.amount_due} USD."

    @tool(mutates=True)
    def make_payment(self) -> str:
        """Pay the bill of the agent's payment request."""
        request = self.place.payment_request
        if request is None:
            return "You do not have a payment request."
        request.paid = True
        return f"Payment of {request.amount_due} USD has been made for bill {request.bill_id}."

    # Task set-up (initialization actions).

    def set_user_info(self, name: str, phone_number: str) -> None:
        self.place.name, self.place.phone_number = name, phone_number

    def set_user_location(self, abroad: bool) -> None:
        self.place.is_abroad = abroad

    def turn_airplane_mode_on(self) -> str:
        self._set_flag(self._toggle_airplane, True)
        return "Airplane Mode is now ON."

    def turn_airplane_mode_off(self) -> str:
        self._set_flag(self._toggle_airplane, False)
        return "Airplane Mode is now OFF."

    def unseat_sim_card(self) -> str:
        self.phone.sim_card_missing = True
        self.simulate_network_search()
        return "SIM card un-seated successfully."

    def lock_sim_card(self, mode: str) -> str:
        self.phone.sim_card_status = "locked_pin" if mode == "pin" else "locked_puk"
        self.simulate_network_search()
        return f"SIM card locked successfully in {mode} mode."

    def turn_data_off(self) -> str:
        self._set_flag(lambda: self._flip("data_enabled", search=True), False)
        return "Data connection broken."

    def turn_roaming_on(self) -> str:
        self._set_flag(lambda: self._flip("roaming_enabled", search=True), True)
        return "Data Roaming is now ON."

    def turn_roaming_off(self) -> str:
        self._set_flag(lambda: self._flip("roaming_enabled", search=True), False)
        return "Data Roaming is now OFF."

    def turn_data_saver_mode_on(self) -> str:
        self._set_flag(lambda: self._flip("data_saver_mode", search=False), True)
        return "Data Saver Mode is now ON."

    def break_apn_settings(self) -> str:
        self.phone.active_apn_settings.apn_name = "broken"
        self.simulate_network_search()
        return "APN settings broken."

    def break_apn_mms_setting(self) -> str:
        self.phone.active_apn_settings.mmsc_url = None
        return "APN MMS setting broken."

    def set_wifi_calling(self, enabled: bool, mms_over_wifi: bool | None = None) -> str:
        self.phone.wifi_calling_enabled = enabled
        if mms_over_wifi is not None:
            self.phone.wifi_calling_mms_over_wifi = mms_over_wifi
        return f"Wi-Fi Calling is now {'ON' if enabled else 'OFF'}."

    def break_vpn(self) -> str:
        self.connect_vpn()
        assert self.phone.vpn_details is not None
        self.phone.vpn_details.server_performance = "poor"
        return "VPN connection broken."

    def remove_app_permission(self, app_name: str, permission: str) -> str:
        app = self.phone.app_statuses.get(app_name)
        if app is None or permission.lower() not in AppPermissions.model_fields:
            raise ValueError(f"cannot remove permission {permission!r} from app {app_name!r}")
        setattr(app.permissions, permission.lower(), False)
        return f"Permission '{permission}' removed from app '{app_name}'."

    # Assertions (evaluation).

    def assert_service_status(self, expected_status: str) -> bool:
        return self.phone.network_connection_status == expected_status

    def assert_mobile_data_status(self, expected_status: bool) -> bool:
        return self.mobile_data_working() == expected_status

    def assert_internet_speed(self, expected_speed: float, expected_desc: str | None = None) -> bool:
        speed, label = self.speed_test()
        speed = speed or 0.0
        if expected_desc is None:
            return speed >= expected_speed
        return speed >= expected_speed and label.lower() == expected_desc.lower()

    def assert_can_send_mms(self, expected_status: bool) -> bool:
        return self.can_send_mms_now() == expected_status


def sync_user_side(env: Any) -> None:
    """After each call: the user's surroundings follow the line's state and pending bills."""
    agent: TelecomTools = env.tools
    user: TelecomUserTools = env.user_tools
    place = user.place
    if place.phone_number is None:
        return
    line = agent.line_by_phone(place.phone_number)
    place.line_active = line.status == LineStatus.ACTIVE
    place.roaming_allowed = line.roaming_enabled
    plan = agent._plan(line.plan_id)
    place.mobile_data_usage_exceeded = (line.data_used_gb
                                        >= plan.data_limit_gb + line.data_refueling_gb)
    if place.payment_request is not None and place.payment_request.paid:
        agent.set_bill_paid(place.payment_request.bill_id)
        place.payment_request = None
    if place.payment_request is None:
        awaiting = agent.bills_awaiting_payment(agent.get_customer_by_phone(place.phone_number))
        if awaiting:
            place.payment_request = PaymentRequest(bill_id=awaiting[0].bill_id,
                                                   amount_due=awaiting[0].total_due)
