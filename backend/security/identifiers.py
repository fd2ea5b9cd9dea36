"""Customer identifiers become keyed hashes and pseudonyms before they reach the database.

The key is `identifier_key()`, derived from the master key ("identifier-index"), which is never in the
database: a stolen database cannot be searched for a known number by hashing it. Conversations made
before the master key existed were keyed with the instance's SECRET_KEY; each is re-keyed the first time
its customer is seen again (services/conversations.py), since only then is the clear identifier at hand.
The encrypted originals and the blind index of identifiers inside messages are in backend/services/vault.py.
"""

import hashlib
import hmac
import unicodedata

from flask import current_app

from backend.security.master_key import derive_key


def identifier_key() -> bytes:
    """The key customer refs are made with (the app's "identifier-index" key)."""
    return derive_key(current_app, "identifier-index")


def normalise_identifier(raw: str) -> str:
    """Same customer, same ref: case, width and separators do not matter."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) >= 6 and all(ch.isdigit() or ch in "+-(). " for ch in text):
        return digits
    return text


def customer_ref(secret: bytes | str, tenant_id: int, raw_identifier: str) -> str:
    """HMAC-SHA256 of the normalised identifier, keyed per tenant, hex. `secret` is `identifier_key()`."""
    secret = secret.encode() if isinstance(secret, str) else secret
    key = hmac.new(secret, f"tenant:{tenant_id}".encode(), hashlib.sha256).digest()
    return hmac.new(key, normalise_identifier(raw_identifier).encode(), hashlib.sha256).hexdigest()


# Marks a console message id stored as its keyed hash (see `console_message_ref`); ids the extension sends are
# compared with stored ones of both kinds, since rows logged before hashing hold the id as given.
CONSOLE_REF_PREFIX = "~"


def console_message_ref(secret: bytes, tenant_id: int, raw_id: str) -> str:
    """A console's id for a message row, keyed: consoles put the customer's number in it (WhatsApp's
    data-id is "true_8613800138000@c.us_3EB0…"), so it is stored only as "~" + HMAC-SHA256 hex, which is
    all that is needed to recognise the row again."""
    key = hmac.new(secret, f"console-message:tenant:{tenant_id}".encode(), hashlib.sha256).digest()
    return CONSOLE_REF_PREFIX + hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()


PSEUDONYM_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def customer_pseudonym(ref: str) -> str:
    """A stable, short name agents and supervisors can tell customers apart by (`客户-7F3AK9`).

    Six characters of a 31-letter alphabet (~30 bits): two customers of one tenant share one only
    past tens of thousands of customers, and the ref, not the pseudonym, is the key.
    """
    number = int(ref[:16], 16)
    chars = []
    for _ in range(6):
        number, digit = divmod(number, len(PSEUDONYM_ALPHABET))
        chars.append(PSEUDONYM_ALPHABET[digit])
    return "客户-" + "".join(chars)
