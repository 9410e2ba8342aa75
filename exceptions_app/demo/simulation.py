"""A synthetic upstream AI: realistic invoice decisions, and posting them to Backstop.

``synthetic_decision`` draws one invoice decision from a seeded random generator:
varied vendors, currencies and sizes, purchase orders that sometimes do not match,
confidences, and a known share of wrong outputs (the amount misread or the vendor
mixed up, with somewhat lower confidence), so that a run can tell how many of the
AI's mistakes the policy sent to people. ``synthetic_decisions`` draws a run of them;
``post_decisions`` sends a run over HTTP as an upstream system would, retrying what
may be retried with the same ``external_id``. ``manage.py simulate`` wraps them, and
the demo seed (``demo.setup``) fills its queues from the same generator.
"""

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

DEFAULT_USE_CASE = "invoice-approval"
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Vendor:
    name: str
    currency: str
    prefix: str  # of its invoice numbers
    catalogue: str
    look_alike: str  # a name an extractor could plausibly confuse with this one


VENDORS = (
    Vendor("ACME GmbH", "EUR", "AC", "office", "ACME Holding AG"),
    Vendor("Nordwind Logistik AG", "EUR", "NWL", "freight", "Nordwest Logistik GmbH"),
    Vendor("Bäckerei Sonnenschein KG", "EUR", "BS", "catering", "Sonnenschein Catering KG"),
    Vendor("Blue Harbour Supplies Ltd", "GBP", "BHS", "facilities", "Blue Harbor Supply Co"),
    Vendor("Thames Valley IT Services Ltd", "GBP", "TV", "it", "Thames IT Solutions Ltd"),
    Vendor("Helvetia Präzision SA", "CHF", "HP", "parts", "Helvetia Precision AG"),
    Vendor("Alpenblick Reinigung GmbH", "CHF", "AR", "facilities", "Alpenglanz Reinigung AG"),
    Vendor("Pinecrest Office Co.", "USD", "PC", "office", "Pine Crest Office Supply"),
    Vendor("Redwood Cloud Inc.", "USD", "RC", "it", "Redwood Compute LLC"),
    Vendor("Great Lakes Freight LLC", "USD", "GLF", "freight", "Great Lake Shipping Inc."),
)

CATALOGUES = {
    "office": (("A4 copy paper, box of 5 reams", 24.90), ("Toner cartridge, black", 89.00),
               ("Office chair, ergonomic", 349.00), ("Standing desk frame", 615.00),
               ("Notebooks, pack of 10", 18.50)),
    "freight": (("Pallet transport, domestic", 145.00), ("Full truckload, 24 t", 1850.00),
                ("Container handling fee", 420.00), ("Express courier, per parcel", 38.00),
                ("Warehouse storage, pallet-week", 6.80)),
    "catering": (("Lunch buffet, per person", 21.50), ("Coffee service, per day", 95.00),
                 ("Breakfast platter", 64.00), ("Event catering, per guest", 48.00)),
    "facilities": (("Office cleaning, monthly", 1240.00), ("Window cleaning", 380.00),
                   ("HVAC maintenance visit", 560.00), ("Replacement light fittings", 42.00),
                   ("Waste disposal, per container", 210.00)),
    "it": (("Laptop, 14-inch business", 1349.00), ("Cloud compute, monthly commitment", 4200.00),
           ("Software licence, per seat-year", 420.00), ("Support hours", 135.00),
           ("Rack server, 2U", 8900.00)),
    "parts": (("Precision bearing set", 86.00), ("CNC machining, per hour", 148.00),
              ("Stainless shaft, 40 mm", 212.00), ("Calibration service", 690.00)),
}

# Share of invoices by size: routine, mid-size (a reviewer approves), large (four eyes).
SIZE_TIERS = ((0.70, 150.0, 4900.0), (0.24, 5200.0, 45000.0), (0.06, 52000.0, 180000.0))
MODEL_VERSIONS = (("invoice-extractor-3.2.1", 0.85), ("invoice-extractor-3.3.0", 0.15))

# Suppliers the AI never saw before a drift: a new country's, billing in euros.
DRIFT_VENDORS = (
    Vendor("Wisła Transport Sp. z o.o.", "EUR", "WT", "freight", "Wisla Trans Sp. z o.o."),
    Vendor("Kraków Office Partners S.A.", "EUR", "KOP", "office", "Krakow Office S.A."),
)


@dataclass(frozen=True)
class Scenario:
    """What the simulated world does over a run, for watching metrics and drift move.

    After ``drift_after`` decisions the input drifts: amounts grow by ``drift_scale``,
    ``drift_vendor_share`` of invoices come from new suppliers of another country, and
    the AI grows less sure of itself. From decision ``new_model_after`` on, the AI posts
    as ``new_model`` (``MODEL_VERSIONS`` before).

    ``subtle_errors``: the wrong outputs misread the amount by a few cents and are as
    sure of themselves as right ones, so no rule can tell them apart: the auto-passed
    decisions are wrong at ``error_rate`` and only QA review finds out."""

    error_rate: float = 0.1
    subtle_errors: bool = False
    drift_after: int | None = None
    drift_scale: float = 1.6
    drift_vendor_share: float = 0.3
    new_model_after: int | None = None
    new_model: str = "invoice-extractor-4.0.0"

    def drifted(self, n: int) -> bool:
        return self.drift_after is not None and n > self.drift_after

    def model_version(self, n: int, rng: random.Random) -> str:
        if self.new_model_after is not None and n > self.new_model_after:
            return self.new_model
        return rng.choices([name for name, _ in MODEL_VERSIONS],
                           weights=[share for _, share in MODEL_VERSIONS])[0]


@dataclass(frozen=True)
class SyntheticDecision:
    body: dict
    wrong: bool  # the output disagrees with the invoice: the ground truth the AI missed
    error: str = ""  # "amount" or "vendor" when wrong
    # The output a careful person gives for this invoice: equal to the body's when right.
    truth: dict = field(default_factory=dict)


def _money(value: float) -> float:
    return round(value + 1e-9, 2)


def _line_items(rng: random.Random, vendor: Vendor, target: float) -> list[dict]:
    catalogue = CATALOGUES[vendor.catalogue]
    affordable = [item for item in catalogue if item[1] <= target] or [min(catalogue,
                                                                         key=lambda i: i[1])]
    items = rng.sample(affordable, k=min(len(affordable), rng.randint(1, 4)))
    weights = [rng.random() + 0.2 for _ in items]
    lines = []
    for (description, unit_price), weight in zip(items, weights, strict=True):
        price = _money(unit_price * rng.uniform(0.9, 1.1))
        quantity = max(1, round(target * weight / sum(weights) / price))
        lines.append({"description": description, "quantity": quantity, "unit_price": price})
    return lines


def _misread(rng: random.Random, amount: float, lines: list[dict]) -> float:
    """A plausible extraction error: swapped digits, a dropped line, a shifted decimal."""
    kind = rng.choice(("swap", "swap", "drop-line", "decimal"))
    if kind == "drop-line" and len(lines) > 1:
        line = rng.choice(lines)
        return _money(amount - line["quantity"] * line["unit_price"])
    if kind == "decimal":
        return _money(amount * rng.choice((10.0, 0.1)))
    digits = list(f"{amount:.2f}".replace(".", ""))
    swappable = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
    if not swappable:
        return _money(amount + 100.0)
    i = rng.choice(swappable)
    digits[i], digits[i + 1] = digits[i + 1], digits[i]
    return _money(int("".join(digits)) / 100)


def synthetic_decision(rng: random.Random, *, external_id: str, error_rate: float,
                       use_case: str = DEFAULT_USE_CASE, scenario: Scenario | None = None,
                       n: int = 0) -> SyntheticDecision:
    """One invoice decision as an upstream extractor would post it: the ``n``-th of a
    run that follows ``scenario`` (its drift and model versions)."""
    scenario = scenario or Scenario(error_rate=error_rate)
    drifted = scenario.drifted(n)
    vendor = (rng.choice(DRIFT_VENDORS) if drifted and rng.random() < scenario.drift_vendor_share
              else rng.choice(VENDORS))
    [(low, high)] = rng.choices([(low, high) for _, low, high in SIZE_TIERS],
                                weights=[share for share, _, _ in SIZE_TIERS])
    target = low * (high / low) ** rng.random()  # log-uniform inside the tier
    if drifted:
        target *= scenario.drift_scale
    lines = _line_items(rng, vendor, target)
    total = _money(sum(line["quantity"] * line["unit_price"] for line in lines))

    po_roll = rng.random()
    if po_roll < 0.78:
        po_amount = total
    elif po_roll < 0.90:  # freight or rounding: inside the 2% tolerance
        po_amount = _money(total * rng.uniform(0.99, 1.01))
    else:  # the supplier billed more (or less) than was ordered
        po_amount = _money(total / rng.uniform(1.04, 1.18) if rng.random() < 0.8
                           else total * rng.uniform(1.05, 1.15))
    year = 2026
    invoice = {
        "vendor": vendor.name,
        "invoice_number": f"{vendor.prefix}-{year}-{rng.randint(10000, 99999)}",
        "po_number": f"PO-{rng.randint(400000, 499999)}",
        "po_amount": po_amount,
        "currency": vendor.currency,
        "line_items": lines,
    }

    duplicate = rng.random() < 0.03
    wrong = rng.random() < error_rate
    if wrong and scenario.subtle_errors:
        error = "amount"
        amount = _money(total + rng.choice((-1, 1)) * rng.randint(1, 99) / 100)
    else:
        error = rng.choice(("amount", "amount", "vendor")) if wrong else ""
        amount = _misread(rng, total, lines) if error == "amount" else total
        if amount == total and error == "amount":
            amount = _money(total + 10.0)
    extracted_vendor = vendor.look_alike if error == "vendor" else vendor.name

    within_po = abs(amount - po_amount) <= 0.02 * po_amount
    if duplicate:
        action = "reject"
        explanation = (f"Invoice {invoice['invoice_number']} looks like a duplicate of one "
                       f"already paid for {invoice['po_number']}.")
    elif within_po:
        action = "approve"
        explanation = (f"{len(lines)} line item(s) totalling {amount:,.2f} {vendor.currency}; "
                       f"matches {invoice['po_number']} ({po_amount:,.2f}).")
    else:
        action = "hold"
        explanation = (f"Total {amount:,.2f} {vendor.currency} differs from "
                       f"{invoice['po_number']} ({po_amount:,.2f}) by more than 2%.")

    # Wrong extractions tend to be less sure of themselves, but not always; after a
    # drift the AI is less sure of everything.
    confidence = (rng.betavariate(6, 2) if wrong and not scenario.subtle_errors
                  else rng.betavariate(22, 1))
    if drifted:
        confidence *= 0.85
    confidence = round(min(max(confidence, 0.30), 0.999), 3)
    model_version = scenario.model_version(n, rng)
    body = {
        "use_case": use_case,
        "external_id": external_id,
        "model_version": model_version,
        "confidence": confidence,
        "input": invoice,
        "output": {"action": action, "amount": amount, "vendor": extracted_vendor},
        "explanation": explanation,
        "meta": {"source": "simulate"},
    }
    truth = careful_output(invoice, duplicate=duplicate)
    return SyntheticDecision(body=body, wrong=wrong, error=error, truth=truth)


def careful_output(invoice: dict, *, duplicate: bool = False) -> dict:
    """The output a careful person gives for the invoice: its vendor, the sum of its
    lines, approved when within 2% of the purchase order, else held (rejected when it
    is a duplicate, which only the invoice's history shows)."""
    total = _money(sum(line["quantity"] * line["unit_price"] for line in invoice["line_items"]))
    po_amount = invoice["po_amount"]
    action = ("reject" if duplicate
              else "approve" if abs(total - po_amount) <= 0.02 * po_amount else "hold")
    return {"action": action, "amount": total, "vendor": invoice["vendor"]}


def synthetic_decisions(*, count: int, error_rate: float, seed: int | None = None,
                        use_case: str = DEFAULT_USE_CASE,
                        scenario: Scenario | None = None) -> list[SyntheticDecision]:
    """A run of ``count`` decisions; the same ``seed`` gives the same run.

    The seed also names the run (``sim-s<seed>-000001``...), so a repeated seeded run
    replays the same ``external_id``s; without one, the run gets a random name.
    ``scenario`` adds a drift and a new model version at chosen points of the run.
    """
    scenario = scenario or Scenario(error_rate=error_rate)
    rng = random.Random(seed)
    run = f"s{seed}" if seed is not None else f"{random.SystemRandom().getrandbits(32):08x}"
    return [synthetic_decision(rng, external_id=f"sim-{run}-{n:06d}",
                               error_rate=scenario.error_rate, use_case=use_case,
                               scenario=scenario, n=n)
            for n in range(1, count + 1)]


@dataclass
class Tally:
    """What came of a run: answers by HTTP status and by route, and the AI's mistakes."""

    statuses: Counter = field(default_factory=Counter)
    routes: Counter = field(default_factory=Counter)
    wrong_routes: Counter = field(default_factory=Counter)
    retries: int = 0
    sample_errors: list = field(default_factory=list)
    elapsed: float = 0.0  # seconds

    def count(self, synthetic: SyntheticDecision, status: int, answer: dict) -> None:
        self.statuses[status] += 1
        route = answer.get("route") if status in (200, 201) else None
        if route:
            self.routes[route] += 1
            if synthetic.wrong:
                self.wrong_routes[route] += 1
        elif len(self.sample_errors) < 3:
            self.sample_errors.append((synthetic.body["external_id"], status, answer))


class SimulationError(Exception):
    """The run cannot go on: Backstop is unreachable or refuses the key."""


def post_decisions(*, decisions: Sequence[SyntheticDecision], url: str, api_key: str,
                   rate: float, batch_size: int = 1, max_retries: int = 5,
                   on_progress: Callable[[int], None] | None = None) -> Tally:
    """POST the decisions to Backstop at ``rate`` per second (0: as fast as it answers).

    ``batch_size`` 1 uses ``/api/v1/decisions/``, more ``/api/v1/decisions/batch/``.
    A 429/5xx or a lost connection is retried with the same body (so the same
    ``external_id``s) up to ``max_retries`` times; a refused key or an unreachable
    server raises ``SimulationError``. ``on_progress`` hears how many were sent.
    """
    tally = Tally()
    started = time.monotonic()
    headers = {"Authorization": f"Api-Key {api_key}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0) as client:
        poster = _Poster(client=client, url=url, tally=tally, max_retries=max_retries)
        for offset in range(0, len(decisions), batch_size):
            if rate:
                # Pace by the schedule, not by sleeps, so slow answers do not drift it.
                delay = started + offset / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            chunk = decisions[offset:offset + batch_size]
            for synthetic, status, answer in poster.post(chunk, batch=batch_size > 1):
                tally.count(synthetic, status, answer)
            if on_progress is not None:
                on_progress(len(chunk))
    tally.elapsed = time.monotonic() - started
    return tally


@dataclass
class _Poster:
    client: httpx.Client
    url: str
    tally: Tally
    max_retries: int

    def post(self, chunk: Sequence[SyntheticDecision], *, batch: bool) -> list[tuple]:
        if not batch:
            [synthetic] = chunk
            response = self._send("/api/v1/decisions/", synthetic.body)
            return [(synthetic, response.status_code, _json(response))]
        response = self._send("/api/v1/decisions/batch/",
                              {"decisions": [synthetic.body for synthetic in chunk]})
        if response.status_code != 200:
            return [(synthetic, response.status_code, _json(response)) for synthetic in chunk]
        return [(synthetic, item["status"], item.get("decision") or item.get("errors") or {})
                for synthetic, item in zip(chunk, response.json()["results"], strict=True)]

    def _send(self, path: str, payload: dict) -> httpx.Response:
        """POST, retrying a 429/5xx or a lost connection with the same body (and so the same
        external_ids): a retry of something already stored is answered as a replay."""
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                response = self.client.post(path, json=payload)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise SimulationError(f"Cannot reach {self.url}: {exc}. Is Backstop "
                                          f"running there?") from exc
            else:
                if response.status_code == 401:
                    raise SimulationError("The API key was refused (401): check --api-key "
                                          "or BACKSTOP_API_KEY, or issue a new one.")
                if response.status_code not in RETRYABLE or attempt == self.max_retries:
                    return response
            self.tally.retries += 1
            time.sleep(_backoff(attempt, response))
        raise AssertionError("unreachable")


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {"detail": body}


def _backoff(attempt: int, response: httpx.Response | None) -> float:
    if response is not None:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(float(retry_after), 30.0)
    return min(0.25 * 2**attempt, 8.0) * random.uniform(0.8, 1.2)
