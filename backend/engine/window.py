"""A short memory per conversation, to catch a number split over consecutive outgoing messages.

"我号码 138" then "1234 5678": neither message holds a phone number, the two together do.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from backend.engine import detectors as det
from backend.engine.normalise import Stream, is_word_char


@dataclass
class Edge:
    at: float | None
    leading: str  # digits of a run that starts the message ("" if none)
    trailing: str  # digits of a run that ends the message
    whole: bool  # the message is nothing but that run
    context: bool  # the message has a contact word ("电话", "call"…)


def message_edge(text: str, detectors: dict, at: float | None) -> tuple[Edge, tuple[int, int] | None]:
    runs = det.digit_runs(text)
    leading = trailing = ""
    lead_span = None
    if runs and not any(is_word_char(c) for c in text[:runs[0].start]):
        leading, lead_span = runs[0].digits, (runs[0].start, runs[0].end)
    if runs and not any(is_word_char(c) for c in text[runs[-1].end:]):
        trailing = runs[-1].digits
    whole = len(runs) == 1 and bool(leading) and bool(trailing)
    context = det.context_before(text, len(text), detectors["contact_context"], reach=len(text))
    return Edge(at, leading, trailing, whole, context), lead_span


def is_phone_length(digits: str, context: bool, detectors: dict) -> bool:
    """The same length rule as detectors.classify_run for a number written without "+"."""
    n = len(digits)
    return (9 <= n <= 15 and n in detectors["national_lengths"]) or (7 <= n <= 8 and context)


class ConversationWindow:
    def __init__(self, settings: dict, max_conversations: int):
        self.messages = settings["messages"]
        self.seconds = settings["seconds"]
        self.max_conversations = max_conversations
        self.history: OrderedDict[str, list[Edge]] = OrderedDict()

    def check_split(self, conversation: str, plain: Stream, detectors: dict, at: float | None):
        """Records this outgoing message; returns the plain span of its leading digits if they complete a
        number begun in the messages before it, else None."""
        edge, lead_span = message_edge(plain.text, detectors, at)
        past = self.history.pop(conversation, [])
        if at is not None:
            past = [e for e in past if e.at is None or at - e.at <= self.seconds]
        result = None
        if edge.leading:
            chain, context, used = edge.leading, edge.context, 0
            for previous in reversed(past):
                if not previous.trailing:
                    break
                chain, context, used = previous.trailing + chain, context or previous.context, used + 1
                if not previous.whole:
                    break
            if (used and is_phone_length(chain, context, detectors)
                    and not is_phone_length(edge.leading, edge.context, detectors)):
                result = lead_span
        past.append(edge)
        self.history[conversation] = past[-self.messages:]
        while len(self.history) > self.max_conversations:
            self.history.popitem(last=False)
        return result
