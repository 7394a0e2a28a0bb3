"""Schemathesis hooks for the vault's contract run (tests/schemathesis/run.mjs).

Generated data almost never holds a Luhn-valid card or the caller's own account id, so without
help every raw-card request stops at validation and the stateful links (save a card, read it,
add a CVV, charge it, read the charge) are never followed. For half of the generated bodies,
chosen by the body's own hash so that a run is reproducible, these hooks put the test account
and a valid test card in. A charge's body gets a saved card of that account (run.mjs saves it),
so that charges succeed and the links on to capture and refund meet real charges.
"""

import ast
import os
import threading
import zlib

import schemathesis

# CPython 3.11's AST constructor keeps its recursion depth where two threads can race on it, and
# hypothesis parses source files (to describe its strategies) from each of schemathesis's
# `--workers 2`: the run then dies with "SystemError: AST constructor recursion depth mismatch"
# on some operation (seen in two runs of two: GET /v1/cards and POST /v1/card). One parse at a
# time keeps the two workers.
_parse, _parse_lock = ast.parse, threading.Lock()


def _one_parse_at_a_time(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _one_parse_at_a_time

ACCOUNT = os.environ.get("CARDSEAL_ACCOUNT", "")
CARD = os.environ.get("CARDSEAL_CARD", "")


def _half(body):
    return zlib.crc32(repr(body).encode()) % 2 == 0


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict) or not _half(body):
        return body
    if "organisation" in body:
        body["organisation"] = ACCOUNT
    if "card_number" in body:
        body.update(card_number="4242424242424242", expiry_month=12, expiry_year=2030, cvv="123")
    if "currency" in body:
        body.update(currency="eur", amount=1000)
    label = getattr(getattr(context, "operation", None), "label", "")
    if CARD and label == "POST /v1/charges":
        # A one-time charge of the saved card, captured or (per `capture`) authorized only.
        body.update(currency="eur", amount=1000, source=CARD)
        body.pop("interaction", None)
        body.pop("reference", None)
        if not isinstance(body.get("capture"), bool):
            body.pop("capture", None)
    return body
