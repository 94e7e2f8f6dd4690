"""Tool semantics on the real databases, including the edge cases the policies talk about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.tau2.environment import Environment, build_environment


@pytest.fixture
def airline(tau2_root: Path) -> Environment:
    return build_environment(tau2_root, "airline")


@pytest.fixture
def retail(tau2_root: Path) -> Environment:
    return build_environment(tau2_root, "retail")


@pytest.fixture
def telecom(tau2_root: Path) -> Environment:
    env = build_environment(tau2_root, "telecom")
    env.run_function("user", "set_user_info", {"name": "John Smith", "phone_number": "555-123-2002"})
    return env


def call(env: Environment, name: str, requestor: str = "assistant", **arguments: Any) -> str:
    result = env.call_tool(requestor, name, arguments)
    assert not result.error, result.content
    return result.content


def error(env: Environment, name: str, arguments: dict[str, Any] | str,
          requestor: str = "assistant") -> str:
    result = env.call_tool(requestor, name, arguments)
    assert result.error, result.content
    assert result.content.startswith("Error: ")
    return result.content


# --- Calling conventions ---

def test_bad_calls_are_error_results_not_crashes(airline: Environment) -> None:
    assert error(airline, "fly_me_to_the_moon", {}) == "Error: Tool 'fly_me_to_the_moon' not found."
    assert "not valid JSON" in error(airline, "get_user_details", '{"user_id": ')
    assert "user_id" in error(airline, "get_user_details", {})
    assert "typo" in error(airline, "get_user_details", {"user_id": "mia_li_3668", "typo": 1})
    assert "must be a JSON object" in error(airline, "get_user_details", '["mia_li_3668"]')
    assert error(airline, "get_user_details", {"user_id": "nobody_1"}) == "Error: User nobody_1 not found"


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # tau2 warns alike
def test_arguments_reach_tools_as_sent_without_coercion_as_in_tau2(tau2_root: Path) -> None:
    """tau2 calls the tool with the decoded JSON values: "2" stays a string."""
    as_int, as_str = build_environment(tau2_root, "airline"), build_environment(tau2_root, "airline")
    # arithmetic on a string fails where tau2's does...
    assert error(as_str, "update_reservation_baggages",
                 {"reservation_id": "4WQ150", "total_baggages": 6, "nonfree_baggages": "1",
                  "payment_id": "gift_card_3576581"}) == \
        "Error: unsupported operand type(s) for -: 'str' and 'int'"
    # ...and a string that is only stored is stored as a string, so the database differs
    # from the one an integer gives (and the task's database check fails, as in tau2)
    for env, total in ((as_int, 6), (as_str, "6")):
        call(env, "update_reservation_baggages", reservation_id="4WQ150", total_baggages=total,
             nonfree_baggages=0, payment_id="gift_card_3576581")
    assert as_str.tools.db.reservations["4WQ150"].total_baggages == "6"
    assert as_int.tools.db.reservations["4WQ150"].total_baggages == 6
    assert not as_int.same_state(as_str)
    # a model the tool builds itself validates (and converts) as tau2's does
    assert call(as_str, "send_certificate", user_id="mia_li_3668", amount="150") == \
        "Certificate certificate_3221322 added to user mia_li_3668 with amount 150."
    certificate = as_str.tools.db.users["mia_li_3668"].payment_methods["certificate_3221322"]
    assert certificate.amount == 150.0


@pytest.mark.parametrize(("arguments", "message"), [
    ({"reservation_id": "4WQ150"},
     "Error: AirlineTools.update_reservation_passengers() missing 1 required positional "
     "argument: 'passengers'"),
    ({"reservation_id": "4WQ150", "passengers": [], "note": "x"},
     "Error: AirlineTools.update_reservation_passengers() got an unexpected keyword argument "
     "'note'"),
    ({"reservation_id": "4WQ150", "passengers": ["Chen Lee"]},  # not dicts: kept as they are
     "Error: Number of passengers does not match"),
    ({"reservation_id": "4WQ150", "passengers": [{"first_name": "Chen"}] * 3},
     "Error: 2 validation errors for Passenger"),
])
def test_missing_unknown_or_malformed_arguments_fail_with_pythons_message(
        airline: Environment, arguments: dict[str, Any], message: str) -> None:
    assert error(airline, "update_reservation_passengers", arguments).startswith(message)


def test_schemas_are_openai_functions(airline: Environment, retail: Environment,
                                      telecom: Environment) -> None:
    names = {s["function"]["name"] for s in airline.tools.schemas()}
    assert len(names) == 14 and {"book_reservation", "search_onestop_flight"} <= names
    assert len(retail.tools.schemas()) == 15
    assert len(telecom.tools.schemas()) == 13
    assert telecom.user_tools is not None and len(telecom.user_tools.schemas()) == 30
    book = next(s for s in airline.tools.schemas() if s["function"]["name"] == "book_reservation")
    params = book["function"]["parameters"]
    assert params["properties"]["cabin"]["enum"] == ["business", "economy", "basic_economy"]
    assert set(params["required"]) >= {"user_id", "flights", "payment_methods", "insurance"}
    assert params["properties"]["flights"]["items"]["$ref"] == "#/$defs/FlightInfo"


def test_results_are_tau2_json_text(airline: Environment) -> None:
    details = json.loads(call(airline, "get_reservation_details", reservation_id="4WQ150"))
    assert details["flights"][0]["flight_number"] == "HAT170" and details["status"] is None
    assert call(airline, "calculate", expression="(883 + 779) * 3") == "4986.0"
    assert "Invalid characters" in error(airline, "calculate", {"expression": "__import__('os')"})
    assert call(airline, "get_flight_status", flight_number="HAT001", date="2024-05-03") == "cancelled"


# --- Airline ---

def test_cancelling_refunds_every_payment_even_for_a_flown_trip(airline: Environment) -> None:
    """The tool does not judge eligibility (the policy does): it refunds and cancels."""
    before = json.loads(call(airline, "get_reservation_details", reservation_id="4WQ150"))
    after = json.loads(call(airline, "cancel_reservation", reservation_id="4WQ150"))
    assert after["status"] == "cancelled"
    assert after["payment_history"] == before["payment_history"] + [
        {"payment_id": p["payment_id"], "amount": -p["amount"]} for p in before["payment_history"]]


def _user_with_gift_card(env: Environment, at_least: float) -> tuple[str, Any]:
    for user_id, user in env.tools.db.users.items():  # type: ignore[attr-defined]
        for method in user.payment_methods.values():
            if method.source == "gift_card":
                method.amount = max(method.amount, at_least)  # enough for the booking
                return user_id, method
    raise AssertionError("no gift card")


def _available_flight(env: Environment) -> tuple[str, str, int]:
    for number, flight in env.tools.db.flights.items():  # type: ignore[attr-defined]
        for date, day in flight.dates.items():
            if day.status == "available" and day.available_seats["economy"] >= 2:
                return number, date, day.prices["economy"]
    raise AssertionError("no available flight")


def test_booking_charges_exact_total_and_updates_seats_and_balances(airline: Environment) -> None:
    number, date, price = _available_flight(airline)
    total = price * 2 + 30 * 2 + 50
    user_id, gift = _user_with_gift_card(airline, total)
    balance = gift.amount
    args = {"user_id": user_id, "origin": "X", "destination": "Y", "flight_type": "one_way",
            "cabin": "economy", "flights": [{"flight_number": number, "date": date}],
            "passengers": [{"first_name": "A", "last_name": "B", "dob": "1990-01-01"},
                           {"first_name": "C", "last_name": "D", "dob": "1991-01-01"}],
            "payment_methods": [{"payment_id": gift.id, "amount": total - 1}],
            "total_baggages": 2, "nonfree_baggages": 1, "insurance": "yes"}
    assert error(airline, "book_reservation", args) == (
        f"Error: Payment amount does not add up, total price is {total}, but paid {total - 1}")
    args["payment_methods"] = [{"payment_id": gift.id, "amount": total}]
    gift.amount = total - 0.5
    assert error(airline, "book_reservation", args) == (
        f"Error: Not enough balance in payment method {gift.id}")
    gift.amount = balance
    db = airline.tools.db  # type: ignore[attr-defined]
    seats = db.flights[number].dates[date].available_seats["economy"]
    booked = json.loads(call(airline, "book_reservation", **args))
    assert booked["reservation_id"] == "HATHAT" and booked["created_at"] == "2024-05-15T15:00:00"
    assert db.flights[number].dates[date].available_seats["economy"] == seats - 2
    assert gift.amount == pytest.approx(balance - total)
    assert db.users[user_id].reservations[-1] == "HATHAT"
    gift.amount += total
    assert json.loads(call(airline, "book_reservation", **args))["reservation_id"] == "HATHAU"


def test_insufficient_gift_card_and_certificate_cannot_pay_for_changes(airline: Environment) -> None:
    db = airline.tools.db  # type: ignore[attr-defined]
    reservation = db.reservations["4WQ150"]
    owner = db.users[reservation.user_id]
    gift = next((p for p in owner.payment_methods.values() if p.source == "gift_card"), None)
    if gift is not None:
        gift.amount = 10.0
        message = error(airline, "update_reservation_baggages",
                        {"reservation_id": "4WQ150", "total_baggages": 9,
                         "nonfree_baggages": reservation.nonfree_baggages + 1,
                         "payment_id": gift.id})
        assert message == "Error: Gift card balance is not enough"
    call(airline, "send_certificate", user_id=reservation.user_id, amount=100)
    assert "certificate_3221322" in owner.payment_methods
    message = error(airline, "update_reservation_baggages",
                    {"reservation_id": "4WQ150", "total_baggages": 9, "nonfree_baggages": 9,
                     "payment_id": "certificate_3221322"})
    assert message == "Error: Certificate cannot be used to update reservation"
    assert reservation.nonfree_baggages == 0  # nothing changed


def test_passenger_count_cannot_change(airline: Environment) -> None:
    message = error(airline, "update_reservation_passengers",
                    {"reservation_id": "4WQ150",
                     "passengers": [{"first_name": "A", "last_name": "B", "dob": "1990-01-01"}]})
    assert message == "Error: Number of passengers does not match"


# --- Retail ---

def _order_with(env: Environment, status: str) -> Any:
    return next(o for o in env.tools.db.orders.values() if o.status == status)  # type: ignore[attr-defined]


def test_exchange_to_an_unavailable_item_fails(retail: Environment) -> None:
    db = retail.tools.db  # type: ignore[attr-defined]
    for order in (o for o in db.orders.values() if o.status == "delivered"):
        for item in order.items:
            unavailable = [v for v in db.products[item.product_id].variants.values()
                           if not v.available]
            if unavailable:
                message = error(retail, "exchange_delivered_order_items", {
                    "order_id": order.order_id, "item_ids": [item.item_id],
                    "new_item_ids": [unavailable[0].item_id],
                    "payment_method_id": order.payment_history[0].payment_method_id})
                assert message == f"Error: New item {unavailable[0].item_id} not found or available"
                assert order.status == "delivered"
                return
    raise AssertionError("no delivered order with an unavailable variant")


def test_modify_items_charges_gift_card_or_refuses(retail: Environment) -> None:
    db = retail.tools.db  # type: ignore[attr-defined]
    for order in (o for o in db.orders.values() if o.status == "pending"):
        user = db.users[order.user_id]
        gift = next((p for p in user.payment_methods.values() if p.source == "gift_card"), None)
        if gift is None:
            continue
        item = order.items[0]
        pricier = [v for v in db.products[item.product_id].variants.values()
                   if v.available and v.price > item.price and v.item_id != item.item_id]
        if not pricier:
            continue
        new = pricier[0]
        diff = round(new.price - item.price, 2)
        gift.balance = diff / 2
        assert error(retail, "modify_pending_order_items", {
            "order_id": order.order_id, "item_ids": [item.item_id], "new_item_ids": [new.item_id],
            "payment_method_id": gift.id}) == "Error: Insufficient gift card balance to pay for the new item"
        gift.balance = diff + 10
        result = json.loads(call(retail, "modify_pending_order_items", order_id=order.order_id,
                                 item_ids=[item.item_id], new_item_ids=[new.item_id],
                                 payment_method_id=gift.id))
        assert result["status"] == "pending (item modified)"
        assert result["payment_history"][-1] == {"transaction_type": "payment",
                                                 "amount": pytest.approx(diff),
                                                 "payment_method_id": gift.id}
        assert gift.balance == pytest.approx(10.0)
        assert "Non-pending order cannot be modified" in error(retail, "modify_pending_order_items", {
            "order_id": order.order_id, "item_ids": [new.item_id], "new_item_ids": [item.item_id],
            "payment_method_id": gift.id})
        return
    raise AssertionError("no suitable pending order")


def test_cancel_and_return_rules(retail: Environment) -> None:
    delivered = _order_with(retail, "delivered")
    assert error(retail, "cancel_pending_order", {"order_id": delivered.order_id,
                                                  "reason": "no longer needed"}) \
        == "Error: Non-pending order cannot be cancelled"
    pending = _order_with(retail, "pending")
    assert error(retail, "cancel_pending_order", {"order_id": pending.order_id,
                                                  "reason": "too expensive"}) == "Error: Invalid reason"
    cancelled = json.loads(call(retail, "cancel_pending_order", order_id=pending.order_id,
                                reason="ordered by mistake"))
    assert cancelled["status"] == "cancelled" and cancelled["payment_history"][-1]["transaction_type"] == "refund"
    user = retail.tools.db.users[delivered.user_id]  # type: ignore[attr-defined]
    original = delivered.payment_history[0].payment_method_id
    other = next((p for p in user.payment_methods.values()
                  if p.id != original and p.source != "gift_card"), None)
    if other is not None:
        assert error(retail, "return_delivered_order_items", {
            "order_id": delivered.order_id, "item_ids": [delivered.items[0].item_id],
            "payment_method_id": other.id}) == "Error: Payment method should be the original payment method"
    returned = json.loads(call(retail, "return_delivered_order_items", order_id=delivered.order_id,
                               item_ids=[delivered.items[0].item_id], payment_method_id=original))
    assert returned["status"] == "return requested"
    assert returned["return_items"] == [delivered.items[0].item_id]


def test_user_lookup(retail: Environment) -> None:
    user = next(iter(retail.tools.db.users.values()))  # type: ignore[attr-defined]
    assert call(retail, "find_user_id_by_email", email=user.email.upper()) == user.user_id
    assert call(retail, "find_user_id_by_name_zip", first_name=user.name.first_name,
                last_name=user.name.last_name, zip=user.address.zip) == user.user_id
    assert error(retail, "find_user_id_by_name_zip", {"first_name": user.name.first_name,
                                                      "last_name": user.name.last_name,
                                                      "zip": "00000"}) == "Error: User not found"
    types = json.loads(call(retail, "list_all_product_types"))
    assert len(types) == 50 and list(types) == sorted(types)


# --- Telecom ---

def test_phone_actions_follow_the_simulated_network(telecom: Environment) -> None:
    assert call(telecom, "run_speed_test", "user") == (
        "Speed Test Result: 220.00 Mbps (Excellent). Connection is very fast.")  # 5G, good signal
    telecom.run_function("user", "turn_airplane_mode_on", {})
    assert call(telecom, "check_status_bar", "user") == "Status Bar: ✈️ Airplane Mode | 🔋 80%"
    assert call(telecom, "run_speed_test", "user") == "Speed test failed: No Connection."
    out = call(telecom, "toggle_airplane_mode", "user")
    assert out.startswith("Airplane Mode is now OFF.\nStatus Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled")
    assert call(telecom, "run_speed_test", "user").startswith("Speed Test Result: 275.00 Mbps")  # (50+500)/2
    call(telecom, "set_network_mode_preference", "user", mode="3g_only")
    assert call(telecom, "run_speed_test", "user").startswith("Speed Test Result: 1.50 Mbps (Poor)")
    assert "not a valid option" in call(telecom, "set_network_mode_preference", "user", mode="6g")
    assert error(telecom, "toggle_data", {}, requestor="assistant") == "Error: Tool 'toggle_data' not found."


def test_refuel_clears_exceeded_data_through_the_sync(telecom: Environment) -> None:
    telecom.run_function("assistant", "set_data_usage",
                         {"customer_id": "C1001", "line_id": "L1002", "data_used_gb": 15.1})
    assert telecom.run_function("user", "assert_mobile_data_status", {"expected_status": False})
    refuel = json.loads(call(telecom, "refuel_data", customer_id="C1001", line_id="L1002",
                             gb_amount=2.0))
    assert refuel["new_data_refueling_gb"] == "2.0" and refuel["charge"] == "4.0"
    assert telecom.run_function("user", "assert_mobile_data_status", {"expected_status": True})
    assert telecom.run_function("assistant", "assert_data_refueling_amount",
                                {"customer_id": "C1001", "line_id": "L1002", "expected_amount": 2.0})


def test_payment_request_round_trip(telecom: Environment) -> None:
    assert call(telecom, "check_payment_request", "user") == "No payment request has been made."
    call(telecom, "send_payment_request", customer_id="C1001", bill_id="B1002")
    assert "A bill is already awaiting payment" in error(
        telecom, "send_payment_request", {"customer_id": "C1001", "bill_id": "B1003"})
    assert call(telecom, "check_payment_request", "user").startswith("You have a payment request for bill B1002")
    call(telecom, "make_payment", "user")
    bill = json.loads(call(telecom, "get_details_by_id", id="B1002"))
    assert bill["status"] == "Paid"
    assert call(telecom, "check_payment_request", "user") == "No payment request has been made."
