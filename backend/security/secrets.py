"""Random tokens and their stored hashes. Veil keeps only hashes of tokens, codes and session ids."""

import hashlib
import hmac
import secrets

from flask import current_app

# Crockford-style alphabet: no 0/O or 1/I/L, so a code read aloud or typed from paper survives.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_enrolment_code(code: str) -> str:
    """Keyed, unlike `hash_token`: a code has only ~40 bits, so a bare SHA-256 in a stolen database could be
    reversed by trying every code. The key (the instance secret) is not in the database."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, normalise_enrolment_code(code).encode(), hashlib.sha256).hexdigest()


def new_enrolment_code() -> str:
    """Eight characters (about 40 bits), shown as XXXX-XXXX; single-use and short-lived."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_enrolment_code(code: str) -> str:
    cleaned = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == 8 else cleaned
