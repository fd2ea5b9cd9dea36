"""Random tokens and their stored hashes. Veil keeps only hashes of tokens, codes and session ids."""

import hashlib
import secrets

# Crockford-style alphabet: no 0/O or 1/I/L, so a code read aloud or typed from paper survives.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_enrolment_code() -> str:
    """Eight characters (about 40 bits), shown as XXXX-XXXX; single-use and short-lived."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_enrolment_code(code: str) -> str:
    cleaned = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == 8 else cleaned
