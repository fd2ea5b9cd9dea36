"""The engine: `check` decides whether a message may be sent; `mask` hides customer identifiers."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field

from backend.engine import detectors as det
from backend.engine.matcher import build_automaton, find_words
from backend.engine.normalise import Normaliser, Skeleton, Stream, Tables
from backend.engine.window import ConversationWindow

MASK_KINDS = ("phone", "email", "id_card", "bank_card", "handle", "link", "crypto_wallet")
SEVERITY = {"allow": 0, "log": 0, "warn": 1, "block": 2}


@dataclass
class Finding:
    type: str  # word, contact, identifier
    category: str
    rule: str
    start: int  # code points in the original text
    end: int
    text: str

    def to_dict(self) -> dict:
        return {"type": self.type, "category": self.category, "rule": self.rule, "start": self.start,
                "end": self.end, "text": self.text}


@dataclass
class CheckResult:
    action: str
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"action": self.action, "findings": [f.to_dict() for f in self.findings]}


@dataclass
class MaskResult:
    text: str
    spans: list[dict]


def original_span(stream: Stream, start: int, end: int) -> tuple[int, int]:
    """Plain-stream span → original code-point span."""
    return stream.orig(start), stream.orig(end - 1) + 1


class Engine:
    """Built once from a compiled payload; `check` and `mask` are then pure apart from the window."""

    def __init__(self, payload: dict, *, window_conversations: int = 10_000):
        with gc_paused():
            self._build(payload, window_conversations)

    def _build(self, payload: dict, window_conversations: int) -> None:
        self.payload = payload
        self.version = payload["hash"]
        self.settings = payload["settings"]
        self.tables = Tables(**payload["tables"])
        self.normaliser = Normaliser(self.tables)
        self.detectors = payload["detectors"]
        words: dict[str, list[tuple[str, str]]] = {}
        for skeleton_text, category, word in payload["words"]:
            words.setdefault(skeleton_text, []).append((category, word))
        self.words = build_automaton(words)
        self.allow = build_automaton({a: [("allow", a)] for a in payload["allow"]})
        self.window = ConversationWindow(self.settings["window"], window_conversations)
        contacts = self.settings["contacts"]
        self.contact_kinds = set(contacts["detectors"]) if contacts["enabled"] else set()

    # ---- shared steps -----------------------------------------------------------------------------

    @staticmethod
    def _words(automaton, plain: Stream, skeleton: Skeleton) -> list[tuple[int, int, str, str]]:
        """(original start, original end, category, word) for each word of `automaton` in the text."""
        found = []
        orig = plain.orig if plain.irregular_plain else None  # None: plain and original indices agree
        for start, end, category, word in find_words(automaton, skeleton):
            start, end = skeleton.plain_index(start), skeleton.plain_index(end - 1) + 1
            if orig is not None:
                start, end = orig(start), orig(end - 1) + 1
            found.append((start, end, category, word))
        return found

    def _allowed(self, plain: Stream, skeleton: Skeleton) -> list[tuple[int, int]]:
        return [(a, b) for a, b, _c, _w in self._words(self.allow, plain, skeleton)]

    def _word_list(self, text: str, plain: Stream, skeleton: Skeleton) -> list[Finding]:
        return [Finding("word", category, word, a, b, text[a:b])
                for a, b, category, word in self._words(self.words, plain, skeleton)]

    def word_findings(self, text: str) -> list[Finding]:
        """Sensitive words only (the allow list applied): what the benchmark compares with bare matchers."""
        plain = self.normaliser.plain(text)
        skeleton = self.normaliser.skeleton(plain)
        allowed = self._allowed(plain, skeleton)
        found = self._word_list(text, plain, skeleton)
        return [f for f in found if not inside(allowed, f.start, f.end)] if allowed else found

    def _detections(self, plain: Stream, kinds: set[str], *, identifiers: bool) -> list[det.Detection]:
        text = plain.text
        found = det.detect_numbers(text, self.detectors, kinds, identifiers=identifiers)
        if "email" in kinds:
            found += det.detect_emails(text)
        if "link" in kinds:
            found += det.detect_links(text)
        if "crypto_wallet" in kinds:
            found += det.detect_wallets(text)
        if "handle" in kinds:
            found += det.detect_handles(text, self.detectors)
        return found

    # ---- check ------------------------------------------------------------------------------------

    def check(self, text: str, *, conversation: str | None = None, direction: str = "out",
              at: float | None = None) -> CheckResult:
        plain = self.normaliser.plain(text)
        skeleton = self.normaliser.skeleton(plain)
        allowed = self._allowed(plain, skeleton)
        findings = self._word_list(text, plain, skeleton)
        if direction == "out":
            finding_type, kinds = "contact", self.contact_kinds
        else:
            finding_type, kinds = "identifier", set(MASK_KINDS)
        for d in self._detections(plain, kinds, identifiers=direction != "out"):
            start, end = original_span(plain, d.start, d.end)
            findings.append(Finding(finding_type, d.kind, f"{finding_type}.{d.kind}", start, end, text[start:end]))
        if direction == "out" and conversation is not None and "phone" in kinds:
            split = self.window.check_split(conversation, plain, self.detectors, at)
            if split is not None:
                start, end = original_span(plain, *split)
                findings.append(Finding("contact", "phone", "contact.phone.split", start, end, text[start:end]))
        findings = [f for f in findings if not inside(allowed, f.start, f.end)]
        findings = drop_nested(dedupe(findings))
        return CheckResult(self._action(findings, direction), findings)

    def _action(self, findings: list[Finding], direction: str) -> str:
        if direction != "out":
            return "allow"  # customers are not stopped; what they send is masked and logged
        action = "allow"
        for finding in findings:
            wanted = (self.settings["actions"].get(finding.category, "block") if finding.type == "word"
                      else self.settings["contacts"]["action"])
            if SEVERITY[wanted] > SEVERITY[action]:
                action = wanted
        return action

    # ---- mask -------------------------------------------------------------------------------------

    def mask(self, text: str) -> MaskResult:
        if not self.settings["mask"]["incoming"]:
            return MaskResult(text, [])  # the tenant switched masking off (settings.toml: mask.incoming)
        plain = self.normaliser.plain(text)
        allowed = self._allowed(plain, self.normaliser.skeleton(plain))
        detections = self._detections(plain, set(MASK_KINDS), identifiers=True)
        chosen: list[det.Detection] = []
        for d in sorted(detections, key=lambda d: (d.start, -(d.end - d.start), d.kind)):
            if chosen and d.start < chosen[-1].end:
                continue  # inside a longer identifier (digits inside an e-mail address)
            chosen.append(d)
        chars = list(text)
        spans = []
        keep_last = 4 if self.settings["mask"]["style"] == "last4" else 0
        for d in chosen:
            start, end = original_span(plain, d.start, d.end)
            if inside(allowed, start, end):
                continue
            positions = sorted({plain.orig(p) for p in (d.mask_positions or range(d.start, d.end))})
            if d.kind in ("phone", "bank_card", "id_card") and keep_last:
                positions = positions[:-keep_last]
            for p in positions:
                chars[p] = "*"
            spans.append({"start": start, "end": end, "type": d.kind})
        return MaskResult("".join(chars), spans)


@contextmanager
def gc_paused():
    """The automata are ~10⁵ small objects that all stay alive; letting the collector walk them while
    they are made costs a third of the build at 100k words, for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) lies wholly within one of the spans (an allow-list match)."""
    return any(a <= start and end <= b for a, b in spans)


def drop_nested(findings: list[Finding]) -> list[Finding]:
    """A number inside a link or an e-mail address is part of that finding, not one of its own.

    A non-word finding goes when another non-word finding strictly contains it (longer, covering it).
    One sweep in order of start (longest first), so a long text with thousands of findings stays fast.
    """
    outer = sorted((f for f in findings if f.type != "word"), key=lambda f: (f.start, -f.end))
    dropped: set[int] = set()
    reach_before = -1  # furthest end among findings that start before the current start
    group_start, group_reach = None, -1
    for f in outer:
        if f.start != group_start:
            reach_before = max(reach_before, group_reach)
            group_start, group_reach = f.start, f.end  # sorted: the first of a start is the longest
        if reach_before >= f.end or group_reach > f.end:
            dropped.add(id(f))
    return [f for f in findings if id(f) not in dropped]


def dedupe(findings: list[Finding]) -> list[Finding]:
    seen = set()
    unique = []
    for f in sorted(findings, key=lambda f: (f.start, f.end, f.type, f.category, f.rule)):
        key = (f.start, f.end, f.type, f.category, f.rule)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
