"""Contact and identifier detectors over the plain stream (normalised, separators kept).

Each detector returns `Detection`s in plain-stream indices; the checker maps them to the original text.
Regular expressions here use only syntax that JavaScript reads the same way (no \\b, no \\d on Unicode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CN_DIGITS = {"〇": "0", "零": "0", "一": "1", "壹": "1", "幺": "1", "二": "2", "贰": "2", "两": "2", "三": "3",
             "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6", "七": "7", "柒": "7",
             "八": "8", "捌": "8", "九": "9", "玖": "9"}
NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9"}
LETTER_DIGITS = {"o": "0", "l": "1", "i": "1"}
RUN_SEPARATORS = set(" \t\n-_.·•~|/\\()[]{}+*,:;'\"`=") | {"\u3000", "、", "。", "～", "—", "–"}
MAX_GAP = 3
# Spans that are numbers but not contacts: dates, times, prices, percentages.
NOT_CONTACT = re.compile(
    r"(?:19|20)[0-9]{2} ?[-/.年] ?[0-9]{1,2} ?[-/.月] ?[0-9]{1,2}(?:日|号)?"
    r"|(?<![0-9])[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?![0-9])"
    r"|[¥$€£₹₩] ?[0-9][0-9,]*(?:\.[0-9]+)?"
    # a price and a percentage start where their digits start: tried at every digit (or every digit after a
    # comma) of a long run, they would be quadratic
    r"|(?<![0-9.,])[0-9][0-9,]*\.[0-9]{1,2}(?![0-9.])"
    r"|(?<![0-9])[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?"
    r"|(?<![0-9])[0-9]+(?:\.[0-9]+)? ?%"
)
# ... and two or more "*": a number someone already masked ("138****5678")
NOT_CONTACT_OR_MASKED = re.compile(NOT_CONTACT.pattern + r"|\*{2,}")
EMAIL = re.compile(
    r"(?<![a-z0-9._%+-])([a-z0-9][a-z0-9._%+-]{0,63})"
    r" ?(@|\(at\)|\[at\]|\{at\}|<at>| at |艾特|圈a) ?"
    r"([a-z0-9][a-z0-9-]{0,62}(?: ?(?:\.|\(dot\)|\[dot\]|\{dot\}| dot |点) ?[a-z0-9][a-z0-9-]{0,62}){1,4})"
)
# "jane dot doe at …": the words before the matched local part that belong to it, running right up to it
# (\Z, since "$" would also match before a newline: "jane dot\ndoe at …" is not one local part)
EMAIL_LOCAL_BEFORE = re.compile(r"(?:[a-z0-9][a-z0-9_%+-]* ?(?:\(dot\)|\[dot\]|\{dot\}| dot ) ?)+\Z")
EMAIL_DOT = re.compile(r" ?(?:\.|\(dot\)|\[dot\]|\{dot\}| dot |点) ?")
LINK = re.compile(
    r"(?<![a-z0-9.])(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog|wa\.me|api\.whatsapp\.com"
    r"|chat\.whatsapp\.com|line\.me|lin\.ee|m\.me|instagram\.com|u\.wechat\.com|weixin\.qq\.com)"
    r"/[a-z0-9_+/?=&%.-]*[a-z0-9_]"
)
WALLET = re.compile(
    r"(?<![a-z0-9])(?:0x[0-9a-f]{40}|t[1-9a-z]{33}|bc1[02-9ac-hj-np-z]{11,71}|[13][1-9a-z]{25,34})(?![a-z0-9])"
)
HANDLE_FILLER = re.compile(r"(?: |:|=|@|号码|号|是|账号|id|me|is|my|的)*")
HANDLE_TOKEN = re.compile(r"[a-z0-9][a-z0-9_.-]{3,31}")


@dataclass
class Detection:
    start: int  # plain-stream index
    end: int
    kind: str  # phone, email, handle, link, bank_card, crypto_wallet, id_card
    mask_positions: list[int] = field(default_factory=list)  # plain indices the masker hides


@dataclass
class Run:
    digits: str
    positions: list[int]  # plain index where each digit starts
    start: int
    end: int
    international: bool


def is_latin_letter(ch: str) -> bool:
    return "a" <= ch <= "z"


def is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


CN_DIGIT_CLASS = "".join(CN_DIGITS)
# A digit, a Chinese numeral, an English number word, or "o"/"l"/"i" right after one of those: the only
# places a digit can stand. digit_runs decides which of them join into a run.
DIGIT_TOKEN = re.compile(
    rf"[0-9{CN_DIGIT_CLASS}]"
    r"|(?<![a-z])(?:zero|one|two|three|four|five|six|seven|eight|nine)(?![a-z])"
    rf"|(?<=[0-9{CN_DIGIT_CLASS}oli])[oli]"
)


def digit_tokens(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, str, bool]]:
    """(start, end, digit, is_letter) for every character or word that stands for a digit."""
    tokens = []
    for match in DIGIT_TOKEN.finditer(text, start, len(text) if end is None else end):
        token = match.group(0)
        if len(token) > 1:
            tokens.append((match.start(), match.end(), NUMBER_WORDS[token], False))
        elif token in LETTER_DIGITS:
            tokens.append((match.start(), match.end(), LETTER_DIGITS[token], True))
        else:
            tokens.append((match.start(), match.end(), CN_DIGITS.get(token, token), False))
    return tokens


_SEPARATOR_CLASS = "".join(re.escape(c) for c in sorted(RUN_SEPARATORS))
_DIGIT = rf"(?:[0-9{CN_DIGIT_CLASS}]|(?<![a-z])(?:zero|one|two|three|four|five|six|seven|eight|nine)(?![a-z]))"
_LETTER = r"(?:[oli](?![a-hj-km-np-z]))"
# A run: a digit, then digits (or o/l/i right after one), each separated by at most MAX_GAP separators.
DIGIT_RUN = re.compile(rf"{_DIGIT}{_LETTER}*(?:[{_SEPARATOR_CLASS}]{{0,{MAX_GAP}}}{_DIGIT}{_LETTER}*)*")
BLOCKED = "\x02"


def digit_runs(text: str) -> list[Run]:
    """Digits (in any disguise) separated only by short runs of separators."""
    masked = NOT_CONTACT_OR_MASKED.sub(lambda match: BLOCKED * (match.end() - match.start()), text)
    runs: list[Run] = []
    for match in DIGIT_RUN.finditer(masked):
        tokens = digit_tokens(masked, match.start(), match.end())
        letters = sum(1 for t in tokens if t[3])
        if len(tokens) - letters < letters:
            continue  # mostly letters: a word, not a number
        start = match.start()
        international = text[max(0, start - 3):start].replace(" ", "").endswith("+")
        if international:
            start = text.rindex("+", 0, start)
        runs.append(Run("".join(t[2] for t in tokens), [t[0] for t in tokens], start, match.end(), international))
    return runs


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        value = int(ch)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def china_id_valid(digits17: str, check: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits17, ID_WEIGHTS, strict=True))
    return "10x98765432"[total % 11] == check


def context_before(text: str, start: int, words: list[str], reach: int = 12) -> bool:
    window = text[max(0, start - reach):start]
    return any(word in window for word in words)


def reference_before(text: str, start: int, words: list[str]) -> bool:
    """An order, tracking or room number: the keyword stands right before, give or take ":", "号", "#"."""
    window = text[max(0, start - 10):start].rstrip(" :：#号是为")
    return any(window.endswith(word) for word in words)


def attached_to_letters(text: str, run: Run) -> bool:
    """Part of a code such as SF1234567890, SKU42177 or 512GB (letters touch the digits)."""
    before = text[run.start - 1] if run.start > 0 else ""
    after = text[run.end] if run.end < len(text) else ""
    return is_latin_letter(before) or is_latin_letter(after) or before == "#" or after in ("#",)


def classify_run(text: str, run: Run, detectors: dict, *, identifiers: bool) -> str | None:
    """phone, bank_card, id_card or None (not a contact)."""
    digits = run.digits
    n = len(digits)
    if run.international or digits.startswith("00") and n >= 10:
        national = digits[2:] if digits.startswith("00") and not run.international else digits
        lengths = detectors["phone_lengths"]
        for size in (1, 2, 3):
            code, rest = national[:size], national[size:]
            if code in lengths and len(rest) in lengths[code]:
                return "phone"
        return "phone" if 8 <= n <= 15 else None
    if identifiers and n == 17 and run.end < len(text) and text[run.end] == "x" and china_id_valid(digits, "x"):
        return "id_card"
    if identifiers and n == 18 and china_id_valid(digits[:17], digits[17]):
        return "id_card"
    if 13 <= n <= 19 and luhn_valid(digits):
        return "bank_card"
    if identifiers and 16 <= n <= 19:
        return "bank_card"  # a customer's card number with a typo is still theirs to hide
    if n == 10 and digits[:3] in ("400", "800"):
        return None  # Chinese company service lines (400/800 numbers) are never a person's own number
    if 9 <= n <= 15 and n in detectors["national_lengths"]:
        return "phone"
    if 7 <= n <= 8 and context_before(text, run.start, detectors["contact_context"]):
        return "phone"
    return None


def detect_numbers(text: str, detectors: dict, enabled: set[str], *, identifiers: bool) -> list[Detection]:
    found = []
    for run in digit_runs(text):
        end = run.end
        if identifiers and len(run.digits) == 17 and end < len(text) and text[end] == "x":
            end += 1
        elif attached_to_letters(text, run):
            continue
        if reference_before(text, run.start, detectors["reference_context"]):
            continue
        kind = classify_run(text, run, detectors, identifiers=identifiers)
        if kind and kind in enabled:
            positions = list(run.positions) + ([end - 1] if end != run.end else [])
            found.append(Detection(run.start, end, kind, positions))
    return found


def detect_emails(text: str) -> list[Detection]:
    found = []
    for match in EMAIL.finditer(text):
        at, domain = match.group(2), match.group(3)
        labels = EMAIL_DOT.split(domain)
        if len(labels) < 2 or len(labels[-1]) < 2 or not all(is_latin_letter(c) for c in labels[-1]):
            continue
        if at.strip() == "at" and all(sep.strip() == "." for sep in EMAIL_DOT.findall(domain)):
            continue  # "look at example.com": a plain " at " needs a spelled-out " dot " as well
        local_start = match.start(1)
        # a bounded look back: a spelled-out local part is short, and long texts stay linear
        window = max(0, local_start - 200)
        before = EMAIL_LOCAL_BEFORE.search(text[window:local_start])
        if before:
            local_start = window + before.start()
        found.append(Detection(local_start, match.end(), "email", list(range(local_start, match.end(1)))))
    return found


def detect_links(text: str) -> list[Detection]:
    return [Detection(m.start(), m.end(), "link") for m in LINK.finditer(text)]


def detect_wallets(text: str) -> list[Detection]:
    found = []
    for match in WALLET.finditer(text):
        token = match.group(0)
        if token[0] in "13" and not (any(is_latin_letter(c) for c in token) and any(is_digit(c) for c in token[1:])):
            continue
        found.append(Detection(match.start(), match.end(), "crypto_wallet"))
    return found


def detect_handles(text: str, detectors: dict) -> list[Detection]:
    found = []
    stop = set(detectors["stop_handles"])
    for keyword, strong in detectors["handle_keywords"]:
        start = text.find(keyword)
        while start != -1:
            end = start + len(keyword)
            latin = is_latin_letter(keyword[0]) or keyword[0] == "+"
            boundary_ok = not latin or (
                (start == 0 or not (is_latin_letter(text[start - 1]) or is_digit(text[start - 1])
                                    or text[start - 1] == "#"))
                and (end >= len(text) or not (is_latin_letter(text[end]) or is_digit(text[end])))
            )
            if boundary_ok:
                filler = HANDLE_FILLER.match(text, end)
                token = HANDLE_TOKEN.match(text, filler.end()) if filler.end() - end <= 10 else None
                if token:
                    value = token.group(0).rstrip(".-")
                    token_end = token.start() + len(value)
                    marked = any(mark in filler.group(0) for mark in (":", "@", "号", "id"))
                    has_sign = any(is_digit(c) or c == "_" for c in value)
                    if (len(value) >= 5 and value not in stop and (token_end >= len(text)
                                                                  or not is_latin_letter(text[token_end]))
                            and (has_sign or strong or marked)):
                        found.append(Detection(start, token_end, "handle",
                                               list(range(token.start(), token_end))))
            start = text.find(keyword, start + 1)
    return found
