"""Customer identifiers become keyed hashes and pseudonyms before they reach the database.

This is the seam the encryption issue widens: it will add encrypted originals and a tenant master key;
callers keep asking this module for `customer_ref` and `customer_pseudonym`.
"""

import hashlib
import hmac
import unicodedata


def normalise_identifier(raw: str) -> str:
    """Same customer, same ref: case, width and separators do not matter."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) >= 6 and all(ch.isdigit() or ch in "+-(). " for ch in text):
        return digits
    return text


def customer_ref(secret: str, tenant_id: int, raw_identifier: str) -> str:
    """HMAC-SHA256 of the normalised identifier, keyed per tenant, hex."""
    key = hmac.new(secret.encode(), f"tenant:{tenant_id}".encode(), hashlib.sha256).digest()
    return hmac.new(key, normalise_identifier(raw_identifier).encode(), hashlib.sha256).hexdigest()


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
