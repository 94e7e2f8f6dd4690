"""Airline domain: typed models of tau2's `airline/db.json` and the agent's 14 tools.

Semantics follow tau2-bench (June 2025): the clock is 2024-05-15T15:00:00 EST, new
reservations get ids HATHAT/HATHAU/HATHAV, certificates `certificate_3221322..4`,
prices are per passenger per segment, insurance costs 30 per passenger and each
non-free bag 50; cancelling refunds every payment and does not release seats.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field

from k2eval.adapters.tau2.toolkit import AgentToolkit, tool

FlightType = Literal["round_trip", "one_way"]
CabinClass = Literal["business", "economy", "basic_economy"]
Insurance = Literal["yes", "no"]

NOW = "2024-05-15T15:00:00"
RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_IDS = ("certificate_3221322", "certificate_3221323", "certificate_3221324")
AIRPORTS = (("SFO", "San Francisco"), ("JFK", "New York"), ("LAX", "Los Angeles"),
            ("ORD", "Chicago"), ("DFW", "Dallas"), ("DEN", "Denver"), ("SEA", "Seattle"),
            ("ATL", "Atlanta"), ("MIA", "Miami"), ("BOS", "Boston"), ("PHX", "Phoenix"),
            ("IAH", "Houston"), ("LAS", "Las Vegas"), ("MCO", "Orlando"), ("EWR", "Newark"),
            ("CLT", "Charlotte"), ("MSP", "Minneapolis"), ("DTW", "Detroit"),
            ("PHL", "Philadelphia"), ("LGA", "LaGuardia"))


class AirportCode(BaseModel):
    iata: str
    city: str


class Name(BaseModel):
    first_name: str
    last_name: str


class Address(BaseModel):
    address1: str
    address2: str | None = None
    city: str
    country: str
    state: str
    zip: str


class Payment(BaseModel):
    payment_id: str = Field(description="The payment method id, such as 'credit_card_7815826'.")
    amount: int = Field(description="The amount paid with this method, in dollars.")


class CreditCard(BaseModel):
    source: Literal["credit_card"]
    id: str
    brand: str
    last_four: str


class GiftCard(BaseModel):
    source: Literal["gift_card"]
    id: str
    amount: float


class Certificate(BaseModel):
    source: Literal["certificate"]
    id: str
    amount: float


PaymentMethod = Annotated[CreditCard | GiftCard | Certificate, Field(discriminator="source")]


class Passenger(BaseModel):
    first_name: str = Field(description="The passenger's first name.")
    last_name: str = Field(description="The passenger's last name.")
    dob: str = Field(description="Date of birth, YYYY-MM-DD.")


class FlightDateAvailable(BaseModel):
    status: Literal["available"]
    available_seats: dict[CabinClass, int]
    prices: dict[CabinClass, int]


class FlightDateOnTime(BaseModel):
    status: Literal["on time"]
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


class FlightDateDelayed(BaseModel):
    status: Literal["delayed"]
    estimated_departure_time_est: str
    estimated_arrival_time_est: str


class FlightDateFlying(BaseModel):
    status: Literal["flying"]
    actual_departure_time_est: str
    estimated_arrival_time_est: str


class FlightDateLanded(BaseModel):
    status: Literal["landed"]
    actual_departure_time_est: str
    actual_arrival_time_est: str


class FlightDateCancelled(BaseModel):
    status: Literal["cancelled"]


AnyFlightDate = (FlightDateAvailable | FlightDateOnTime | FlightDateDelayed | FlightDateFlying
                 | FlightDateLanded | FlightDateCancelled)
FlightDate = Annotated[AnyFlightDate, Field(discriminator="status")]


class Flight(BaseModel):
    flight_number: str
    origin: str
    destination: str
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str
    dates: dict[str, FlightDate]


class DirectFlight(BaseModel):
    flight_number: str
    origin: str
    destination: str
    status: Literal["available"]
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str
    date: str | None = None
    available_seats: dict[CabinClass, int]
    prices: dict[CabinClass, int]


class ReservationFlight(BaseModel):
    flight_number: str
    origin: str
    destination: str
    date: str
    price: int


class FlightInfo(BaseModel):
    flight_number: str = Field(description="The flight number, such as 'HAT001'.")
    date: str = Field(description="The flight date, YYYY-MM-DD, such as '2024-05-01'.")


class User(BaseModel):
    user_id: str
    name: Name
    address: Address
    email: str
    dob: str
    payment_methods: dict[str, PaymentMethod]
    saved_passengers: list[Passenger]
    membership: Literal["gold", "silver", "regular"]
    reservations: list[str]


class Reservation(BaseModel):
    reservation_id: str
    user_id: str
    origin: str
    destination: str
    flight_type: FlightType
    cabin: CabinClass
    flights: list[ReservationFlight]
    passengers: list[Passenger]
    payment_history: list[Payment]
    created_at: str
    total_baggages: int
    nonfree_baggages: int
    insurance: Insurance
    status: Literal["cancelled"] | None = None


class FlightDB(BaseModel):
    flights: dict[str, Flight]
    users: dict[str, User]
    reservations: dict[str, Reservation]


M = TypeVar("M", bound=BaseModel)


def _from_dicts(items: Any, model: type[M]) -> Any:
    """tau2's handling of raw list arguments: a list of only dicts becomes models; anything
    else is kept as it is (and fails, or not, further on exactly as in tau2)."""
    if all(isinstance(item, dict) for item in items):
        return [model(**item) for item in items]
    return items


class AirlineTools(AgentToolkit[FlightDB]):
    """The airline agent's tools."""

    def _user(self, user_id: str) -> User:
        if user_id not in self.db.users:
            raise ValueError(f"User {user_id} not found")
        return self.db.users[user_id]

    def _reservation(self, reservation_id: str) -> Reservation:
        if reservation_id not in self.db.reservations:
            raise ValueError(f"Reservation {reservation_id} not found")
        return self.db.reservations[reservation_id]

    def _flight(self, flight_number: str) -> Flight:
        if flight_number not in self.db.flights:
            raise ValueError(f"Flight {flight_number} not found")
        return self.db.flights[flight_number]

    def _flight_date(self, flight_number: str, date: str) -> AnyFlightDate:
        flight = self._flight(flight_number)
        if date not in flight.dates:
            raise ValueError(f"Flight {flight_number} not found on date {date}")
        return flight.dates[date]

    def _direct_flights(self, date: str, origin: str | None, destination: str | None,
                        leave_after: str | None = None) -> list[DirectFlight]:
        found = []
        for flight in self.db.flights.values():
            day = flight.dates.get(date)
            if (isinstance(day, FlightDateAvailable)
                    and (origin is None or flight.origin == origin)
                    and (destination is None or flight.destination == destination)
                    and (leave_after is None
                         or flight.scheduled_departure_time_est >= leave_after)):
                found.append(DirectFlight(
                    flight_number=flight.flight_number, origin=flight.origin,
                    destination=flight.destination, status="available",
                    scheduled_departure_time_est=flight.scheduled_departure_time_est,
                    scheduled_arrival_time_est=flight.scheduled_arrival_time_est,
                    available_seats=day.available_seats, prices=day.prices))
        return found

    def _charge_for_update(self, user: User, payment_id: str, total: int) -> Payment | None:
        """Check and charge a payment for a change; certificates cannot pay for changes."""
        if payment_id not in user.payment_methods:
            raise ValueError("Payment method not found")
        method = user.payment_methods[payment_id]
        if isinstance(method, Certificate):
            raise ValueError("Certificate cannot be used to update reservation")
        if isinstance(method, GiftCard):
            if method.amount < total:
                raise ValueError("Gift card balance is not enough")
            method.amount -= total
        return Payment(payment_id=payment_id, amount=total) if total != 0 else None

    @tool(mutates=True)
    def book_reservation(self, user_id: str, origin: str, destination: str,
                         flight_type: FlightType, cabin: CabinClass, flights: list[FlightInfo],
                         passengers: list[Passenger], payment_methods: list[Payment],
                         total_baggages: int, nonfree_baggages: int,
                         insurance: Insurance) -> Reservation:
        """Book a new reservation.

        Args:
            user_id: The id of the user booking, such as 'sara_doe_496'.
            origin: IATA code of the trip's origin, such as 'SFO'.
            destination: IATA code of the trip's destination, such as 'JFK'.
            flight_type: 'one_way' or 'round_trip'.
            cabin: 'basic_economy', 'economy' or 'business'.
            flights: Every flight segment of the trip, each with flight number and date.
            passengers: Every passenger, each with first name, last name and date of birth.
            payment_methods: The payment methods used and the amount charged to each.
            total_baggages: Total number of checked bags.
            nonfree_baggages: Number of checked bags that must be paid for.
            insurance: 'yes' or 'no' for travel insurance.
        """
        flights = _from_dicts(flights, FlightInfo)
        passengers = _from_dicts(passengers, Passenger)
        payment_methods = _from_dicts(payment_methods, Payment)
        user = self._user(user_id)
        reservation_id = next((r for r in RESERVATION_IDS if r not in self.db.reservations), None)
        if reservation_id is None:
            raise ValueError("Too many reservations")
        reservation = Reservation(
            reservation_id=reservation_id, user_id=user_id, origin=origin,
            destination=destination, flight_type=flight_type, cabin=cabin, flights=[],
            passengers=copy.deepcopy(passengers), payment_history=copy.deepcopy(payment_methods),
            created_at=NOW, total_baggages=total_baggages, nonfree_baggages=nonfree_baggages,
            insurance=insurance)

        total_price = 0
        booked_days: list[FlightDateAvailable] = []
        for info in flights:
            flight = self._flight(info.flight_number)
            day = self._flight_date(info.flight_number, info.date)
            if not isinstance(day, FlightDateAvailable):
                raise ValueError(f"Flight {info.flight_number} not available on date {info.date}")
            if day.available_seats[cabin] < len(passengers):
                raise ValueError(f"Not enough seats on flight {info.flight_number}")
            price = day.prices[cabin]
            reservation.flights.append(ReservationFlight(
                origin=flight.origin, destination=flight.destination,
                flight_number=info.flight_number, date=info.date, price=price))
            booked_days.append(day)
            total_price += price * len(passengers)
        if insurance == "yes":
            total_price += 30 * len(passengers)
        total_price += 50 * nonfree_baggages

        for payment in payment_methods:
            if payment.payment_id not in user.payment_methods:
                raise ValueError(f"Payment method {payment.payment_id} not found")
            method = user.payment_methods[payment.payment_id]
            if isinstance(method, (GiftCard, Certificate)) and method.amount < payment.amount:
                raise ValueError(f"Not enough balance in payment method {payment.payment_id}")
        paid = sum(p.amount for p in payment_methods)
        if paid != total_price:
            raise ValueError(f"Payment amount does not add up, total price is {total_price}, "
                             f"but paid {paid}")

        for payment in payment_methods:
            method = user.payment_methods[payment.payment_id]
            if isinstance(method, GiftCard):
                method.amount -= payment.amount
            elif isinstance(method, Certificate):
                user.payment_methods.pop(payment.payment_id)
        for day in booked_days:
            day.available_seats[cabin] -= len(passengers)
        self.db.reservations[reservation_id] = reservation
        user.reservations.append(reservation_id)
        return reservation

    @tool(mutates=False)
    def calculate(self, expression: str) -> str:
        """Evaluate an arithmetic expression and return the result rounded to 2 decimals.

        Args:
            expression: The expression, made of numbers, + - * /, parentheses and spaces, such as '2 + 2'.
        """
        return calculate(expression)

    @tool(mutates=True)
    def cancel_reservation(self, reservation_id: str) -> Reservation:
        """Cancel a whole reservation and refund its payments to their original methods.

        Args:
            reservation_id: The reservation id, such as 'ZFA04Y'.
        """
        reservation = self._reservation(reservation_id)
        refunds = [Payment(payment_id=p.payment_id, amount=-p.amount)
                   for p in reservation.payment_history]
        reservation.payment_history.extend(refunds)
        reservation.status = "cancelled"
        return reservation

    @tool(mutates=False)
    def get_reservation_details(self, reservation_id: str) -> Reservation:
        """Get the details of a reservation.

        Args:
            reservation_id: The reservation id, such as '8JX2WO'.
        """
        return self._reservation(reservation_id)

    @tool(mutates=False)
    def get_user_details(self, user_id: str) -> User:
        """Get the details of a user, including payment methods and reservation ids.

        Args:
            user_id: The user id, such as 'sara_doe_496'.
        """
        return self._user(user_id)

    @tool(mutates=False)
    def list_all_airports(self) -> list[AirportCode]:
        """List every airport served, with IATA code and city."""
        return [AirportCode(iata=code, city=city) for code, city in AIRPORTS]

    @tool(mutates=False)
    def search_direct_flight(self, origin: str, destination: str, date: str) -> list[DirectFlight]:
        """Search bookable direct flights between two airports on a date.

        Args:
            origin: IATA code of the origin airport, such as 'JFK'.
            destination: IATA code of the destination airport, such as 'LAX'.
            date: The date, YYYY-MM-DD, such as '2024-01-01'.
        """
        return self._direct_flights(date, origin, destination)

    @tool(mutates=False)
    def search_onestop_flight(self, origin: str, destination: str,
                              date: str) -> list[list[DirectFlight]]:
        """Search bookable one-stop connections between two airports departing on a date.

        Args:
            origin: IATA code of the origin airport, such as 'JFK'.
            destination: IATA code of the destination airport, such as 'LAX'.
            date: The date, YYYY-MM-DD, such as '2024-05-01'.
        """
        pairs = []
        for first in self._direct_flights(date, origin, None):
            first.date = date
            second_date = (f"2024-05-{int(date[-2:]) + 1}"
                           if "+1" in first.scheduled_arrival_time_est else date)
            for second in self._direct_flights(second_date, first.destination, destination,
                                               leave_after=first.scheduled_arrival_time_est):
                second.date = second_date
                pairs.append([first, second])
        return pairs

    @tool(mutates=True)
    def send_certificate(self, user_id: str, amount: int) -> str:
        """Add a travel certificate of the given amount to a user's payment methods.

        Args:
            user_id: The user id, such as 'sara_doe_496'.
            amount: The certificate amount in dollars.
        """
        user = self._user(user_id)
        for payment_id in CERTIFICATE_IDS:
            if payment_id not in user.payment_methods:
                user.payment_methods[payment_id] = Certificate(
                    id=payment_id, amount=amount, source="certificate")
                return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
        raise ValueError("Too many certificates")

    @tool(mutates=True)
    def update_reservation_baggages(self, reservation_id: str, total_baggages: int,
                                    nonfree_baggages: int, payment_id: str) -> Reservation:
        """Change the checked bags of a reservation, paying 50 per added non-free bag.

        Args:
            reservation_id: The reservation id, such as 'ZFA04Y'.
            total_baggages: The new total number of checked bags.
            nonfree_baggages: The new number of non-free checked bags.
            payment_id: A payment method id from the user's profile, such as 'credit_card_7815826' or 'gift_card_7815826'.
        """
        reservation = self._reservation(reservation_id)
        user = self._user(reservation.user_id)
        total = 50 * max(0, nonfree_baggages - reservation.nonfree_baggages)
        payment = self._charge_for_update(user, payment_id, total)
        if payment is not None:
            reservation.payment_history.append(payment)
        reservation.total_baggages = total_baggages
        reservation.nonfree_baggages = nonfree_baggages
        return reservation

    @tool(mutates=True)
    def update_reservation_flights(self, reservation_id: str, cabin: CabinClass,
                                   flights: list[FlightInfo], payment_id: str) -> Reservation:
        """Change the flights and/or cabin of a reservation and charge or refund the difference.

        Args:
            reservation_id: The reservation id, such as 'ZFA04Y'.
            cabin: The cabin class for the whole reservation.
            flights: Every flight segment of the updated reservation, unchanged segments included.
            payment_id: A payment method id from the user's profile, such as 'credit_card_7815826' or 'gift_card_7815826'.
        """
        flights = _from_dicts(flights, FlightInfo)
        reservation = self._reservation(reservation_id)
        user = self._user(reservation.user_id)
        n_passengers = len(reservation.passengers)
        total = 0
        new_flights = []
        for info in flights:
            kept = next((f for f in reservation.flights
                         if f.flight_number == info.flight_number and f.date == info.date
                         and cabin == reservation.cabin), None)
            if kept is not None:
                total += kept.price * n_passengers
                new_flights.append(kept)
                continue
            flight = self._flight(info.flight_number)
            day = self._flight_date(info.flight_number, info.date)
            if not isinstance(day, FlightDateAvailable):
                raise ValueError(f"Flight {info.flight_number} not available on date {info.date}")
            if day.available_seats[cabin] < n_passengers:
                raise ValueError(f"Not enough seats on flight {info.flight_number}")
            segment = ReservationFlight(flight_number=info.flight_number, date=info.date,
                                        price=day.prices[cabin], origin=flight.origin,
                                        destination=flight.destination)
            total += segment.price * n_passengers
            new_flights.append(segment)
        total -= sum(f.price for f in reservation.flights) * n_passengers
        payment = self._charge_for_update(user, payment_id, total)
        if payment is not None:
            reservation.payment_history.append(payment)
        reservation.flights = new_flights
        reservation.cabin = cabin
        return reservation

    @tool(mutates=True)
    def update_reservation_passengers(self, reservation_id: str,
                                      passengers: list[Passenger]) -> Reservation:
        """Replace the passengers of a reservation; their number cannot change.

        Args:
            reservation_id: The reservation id, such as 'ZFA04Y'.
            passengers: Every passenger, each with first name, last name and date of birth.
        """
        passengers = _from_dicts(passengers, Passenger)
        reservation = self._reservation(reservation_id)
        if len(passengers) != len(reservation.passengers):
            raise ValueError("Number of passengers does not match")
        reservation.passengers = copy.deepcopy(passengers)
        return reservation

    @tool(mutates=False)
    def get_flight_status(self, flight_number: str, date: str) -> str:
        """Get the status of a flight on a date.

        Args:
            flight_number: The flight number, such as 'HAT001'.
            date: The date, YYYY-MM-DD.
        """
        return str(self._flight_date(flight_number, date).status)


def calculate(expression: str) -> str:
    """tau2's calculator: digits, + - * / ( ) . and spaces only; result rounded to 2 places."""
    if not all(char in "0123456789+-*/(). " for char in expression):
        raise ValueError("Invalid characters in expression")
    return str(round(float(eval(expression, {"__builtins__": None}, {})), 2))
