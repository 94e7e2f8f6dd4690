"""The simulated backends: their rules, and the gold states reached by the milestone calls."""

from __future__ import annotations

import re
from typing import Any

import pytest

from k2eval.adapters.acebench.agent import (
    MULTI_TURN_ERROR,
    UNBOUND_RESULT,
    _execute,
    check_state,
    process_accuracy,
)
from k2eval.adapters.acebench.data import AGENT
from k2eval.adapters.acebench.scenarios import Environment, UnknownFunction, execution_result
from k2eval.adapters.base import Item

PHONE = ["BaseApi", "MessageApi", "ReminderApi", "FoodPlatform"]

# Items whose milestones are only key steps, not a full path to the gold state (checked below
# to really differ, so the list cannot go stale).
MILESTONES_INCOMPLETE = {
    "agent_multi_turn_6": "no login_device() before viewing messages",
    "agent_multi_step_0": "orders 'Super Supreme', the menu item is 'Super Supreme Pizza'",
    "agent_multi_step_1": "orders 'Super Supreme', the menu item is 'Super Supreme Pizza'",
    "agent_multi_step_12": "no login_food_platform() before ordering",
    "agent_multi_step_13": "no login_food_platform() before ordering",
    "agent_multi_step_14": "deletes the earliest message; the gold state deleted the latest",
    "agent_multi_step_15": "deletes the earliest message; the gold state deleted the latest",
    "agent_multi_step_16": "no login_device() though the device starts logged out",
    "agent_multi_step_17": "deletes the earliest message; the gold state deleted the latest",
}


def _repair_quotes(milestone: str) -> str:
    """Milestones quote values like 'Domino's' with clashing quotes; re-quote them."""
    return re.sub(r"=(['\"])(.*?)\1(?=, \w+=|\)|\})", lambda m: "=" + repr(m.group(2)),
                  milestone.strip())


def _drive(data: dict[str, Any], milestones: list[str]) -> list[dict[str, Any]]:
    env = Environment(data["involved_classes"], data["initial_config"])
    for milestone in milestones:
        _execute(env, _repair_quotes(milestone), stop_on_error=False)
    return env.state()


def test_milestones_reproduce_the_gold_states(acebench_items: dict[str, list[Item]]) -> None:
    checked = 0
    for category in AGENT:
        for item in acebench_items[category]:
            stones = item.data["mile_stone"]
            paths = stones if isinstance(stones[0], list) else [stones]
            reached = [check_state(_drive(item.data, path), item.data["ground_truth"])[0]
                       for path in paths]
            assert any(reached) is (item.id not in MILESTONES_INCOMPLETE), item.id
            checked += 1
    assert checked == 50


def test_wifi_login_and_capacity_rules() -> None:
    env = Environment(PHONE, {"BaseApi": {"wifi": False, "logged_in": False}})
    assert env.call("send_message", {"sender_name": "Eve", "receiver_name": "Frank",
                                     "message": "hi"})["message"].startswith("Device not logged in")
    env.call("login_device", {})
    assert "Wi-Fi is turned off" in env.call("send_message", {
        "sender_name": "Eve", "receiver_name": "Frank", "message": "hi"})["message"]
    env.call("turn_on_wifi", {})  # reaches every phone class
    assert all(s[name]["wifi"] for s in env.state() for name in s if name == "BaseApi")
    assert env.instances["FoodPlatform"].wifi is True  # type: ignore[attr-defined]
    assert "capacity is full" in env.call("send_message", {
        "sender_name": "Eve", "receiver_name": "Frank", "message": "hi"})["message"]
    assert env.call("delete_message", {"message_id": 3})["status"] is True
    assert env.call("send_message", {"sender_name": "Eve", "receiver_name": "Frank",
                                     "message": "hi"})["status"] is True
    inbox = next(s["MessageApi"]["inbox"] for s in env.state() if "MessageApi" in s)
    assert "3" not in inbox and inbox["7"] == {"sender_id": "USR100", "receiver_id": "USR101",
                                               "message": "hi"}
    with pytest.raises(KeyError):  # a sent message has no time; upstream raises the same
        env.call("get_latest_message_id", {})


def test_food_orders_and_balances() -> None:
    env = Environment(["BaseApi", "FoodPlatform"], {"BaseApi": {"wifi": True}})
    assert "not logged in" in env.call("add_food_delivery_order", {
        "username": "Jack", "merchant_name": "Heytea", "items": []})["message"]
    env.call("login_food_platform", {"username": "Jack", "password": "password654"})
    order = {"username": "Jack", "merchant_name": "Jiutian BBQ",
             "items": [{"product": "Korean Grilled Beef", "quantity": 1}]}
    assert env.call("add_food_delivery_order", order)["message"] == \
        "Insufficient balance to place the order"
    order["items"] = [{"product": "Grilled Pork Belly", "quantity": 1}]
    assert env.call("add_food_delivery_order", order)["status"] is True
    assert env.call("check_balance", {"user_name": "Jack"}) == 42.0
    assert env.call("get_products", {"merchant_name": "Nowhere"})["status"] is False


def test_travel_booking_modification_and_cancellation() -> None:
    env = Environment(["Travel"], {})
    booked = env.call("reserve_flight", {"user_id": "user3", "password": "password789",
                                         "flight_no": "CZ4352", "cabin": "Economy Class",
                                         "payment_method": "bank", "baggage_count": 4})
    assert booked == ("Booking successful. Reservation ID: res_5. Total cost: 1650 yuan "
                      "(including baggage fees).")
    changed = env.call("modify_flight", {"user_id": "user3", "reservation_id": "res_5",
                                         "new_cabin": "Business Class"})
    assert changed == "Cabin change successful. Price difference paid: 900."
    assert env.call("cancel_reservation", {"user_id": "user1", "reservation_id": "res_1",
                                           "reason": "change of plans"}).startswith("More than 24")
    state = env.state()[0]["Travel"]
    assert state["users"]["user3"]["bank_balance"] == 5000.0 - 1650 - 900
    assert state["users"]["user1"]["cash_balance"] == 3200.0
    assert len(state["reservations"]) == 5  # cancelling keeps the reservation, as upstream
    with pytest.raises(KeyError):  # a wrong password fails on the user's membership level
        env.call("reserve_flight", {"user_id": "user3", "password": "x", "flight_no": "CZ4352",
                                    "cabin": "Economy Class", "payment_method": "cash",
                                    "baggage_count": 1})


def test_unknown_functions_and_bad_arguments_raise() -> None:
    env = Environment(PHONE, {})
    with pytest.raises(UnknownFunction):
        env.call("format_disk", {})
    with pytest.raises(UnknownFunction):
        env.call("_load", {"config": {}})
    with pytest.raises(TypeError):
        env.call("send_message", {"to": "Frank"})


WIFI_ON = {"status": True, "message": "Wi-Fi has been turned on"}
UNBOUND = f"Error during execution: {UNBOUND_RESULT}"


@pytest.mark.parametrize(("text", "stop_on_error", "results", "ok"), [
    # an unknown function repeats the message's previous result, as upstream's executor does
    ("[turn_on_wifi(), fly(to='Mars')]", True, [WIFI_ON, WIFI_ON], True),
    ("[turn_on_wifi(), fly(to='Mars')]", False, [WIFI_ON, WIFI_ON], True),
    # ... and fails when there is none yet
    ("[fly(to='Mars'), turn_on_wifi()]", False, [UNBOUND, WIFI_ON], True),
    ("[fly(to='Mars'), turn_on_wifi()]", True, list(MULTI_TURN_ERROR), False),
    # a dict argument is written back as a call of an undefined name
    ("[turn_on_wifi(x={'k': {'a': 1}})]", False,
     ["Error during execution: name 'k' is not defined"], True),
    ("[turn_on_wifi(x=1)]", True, list(MULTI_TURN_ERROR), False),
    ("[42]", True, [], True),
])
def test_the_executor_answers_as_upstreams(text: str, stop_on_error: bool, results: list[Any],
                                           ok: bool) -> None:
    env = Environment(PHONE, {})
    assert _execute(env, text, stop_on_error=stop_on_error) == (results, ok)


def test_multi_turn_errors_show_the_characters_of_an_unformatted_template() -> None:
    assert "".join(MULTI_TURN_ERROR) == "Error during execution: {str(e)}"


def test_execution_results_read_as_upstream() -> None:
    assert execution_result({1: "a"}) == {"1": "a"}
    assert execution_result(412.0) == 412.0
    assert execution_result([{"p": "x"}]) == "[{'p': 'x'}]"
    assert execution_result("Booking successful.") == "Booking successful."


def test_state_check_rules() -> None:
    gold: list[dict[str, Any]] = [{"BaseApi": {"wifi": True, "logged_in": True}},
            {"MessageApi": {"inbox": {"1": {"m": "a"}}}},
            {"ReminderAPI": {"reminder_list": {"9": {}}}}]
    state: list[dict[str, Any]] = [{"BaseApi": {"wifi": True, "logged_in": True}},
             {"MessageApi": {"inbox": {"1": {"m": "a"}, "2": {"m": "extra"}}}},
             {"ReminderApi": {"reminder_list": {}}}]
    # extra inbox keys are not compared; a gold class with no same-shaped partner is skipped
    assert check_state(state, gold) == (True, [])
    assert not check_state(state[:2], gold)[0]
    state[0]["BaseApi"]["wifi"] = False
    assert check_state(state, gold)[1] == ["class(BaseApi) wifi: expected True, got False"]


def test_process_accuracy_is_an_ordered_match() -> None:
    stones = ["[a()]", "[b()]", "[c()]"]
    assert process_accuracy(["[a()]", "[b()] ", "[x()]", "[c()]"], stones) == 1.0
    # a milestone that never comes consumes the rest of the process (the official greedy scan)
    assert process_accuracy(["[a()]", "[x()]", "[c()]"], stones) == pytest.approx(1 / 3)
    assert process_accuracy(["[c()]", "[a()]"], stones) == pytest.approx(1 / 3)
    assert process_accuracy([], []) == 1.0
    assert process_accuracy(["[b()]"], [["[a()]"], ["[b()]", "[c()]"]]) == 0.5
