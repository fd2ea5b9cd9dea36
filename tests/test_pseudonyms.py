"""The extension shows a customer named by their number under the pseudonym the panel uses."""

from __future__ import annotations

import pytest

from backend.extensions import db, socketio
from backend.models import Conversation, Message
from backend.security.rate_limit import TokenBuckets
from backend.services import conversations
from tests.conftest import device_token
from tests.test_ingest import CUSTOMER, message, send


@pytest.fixture(autouse=True)
def _fresh_buckets(monkeypatch):
    monkeypatch.setattr(conversations, "pseudonym_lookups", TokenBuckets(20, 200))


def ask(app, device_id: int, payload):
    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, device_id)})
    assert sio.is_connected("/agent")
    return sio, sio.emit("pseudonyms", payload, namespace="/agent", callback=True)


def test_the_extension_gets_the_panels_pseudonym(app, orgs):
    own, other = orgs
    sio, answer = ask(app, own.device_id, {"identifiers": [CUSTOMER, "+8613900001111", "jane@example.com"]})
    assert answer["ok"] is True
    names = answer["pseudonyms"]
    assert names[CUSTOMER] == names["+8613900001111"], "the same number however it is written"
    assert names[CUSTOMER].startswith("客户-") and names["jane@example.com"] != names[CUSTOMER]
    # a message from that customer: the conversation the panel shows carries the same name
    assert send(sio, [message(1)])["acked"] == ["event-0001"]
    with app.app_context():
        logged = db.session.query(Message).filter_by(client_event_id="event-0001").one()
        assert db.session.get(Conversation, logged.conversation_id).customer_pseudonym == names[CUSTOMER]
    # another tenant's devices see another name for the same number
    _sio, theirs = ask(app, other.device_id, {"identifiers": [CUSTOMER]})
    assert theirs["pseudonyms"][CUSTOMER] != names[CUSTOMER]


@pytest.mark.parametrize("payload", [None, [], {"identifiers": []}, {"identifiers": "x"}, {"identifiers": [5]},
                                     {"identifiers": [""]}, {"identifiers": ["a" * 201]},
                                     {"identifiers": ["\ud800"]}, {"identifiers": ["x"] * 51}])
def test_bad_lookups_get_a_clear_error(app, orgs, payload):
    own, _other = orgs
    _sio, answer = ask(app, own.device_id, payload)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_value"


def test_a_device_trying_numbers_is_slowed_down(app, orgs):
    own, _other = orgs
    sio, _answer = ask(app, own.device_id, {"identifiers": ["1"]})
    answers = [sio.emit("pseudonyms", {"identifiers": [f"+86 138 0000 {n:04d}" for n in range(i * 50, i * 50 + 50)]},
                        namespace="/agent", callback=True) for i in range(5)]
    assert [a["ok"] for a in answers[:3]] == [True, True, True]
    assert answers[-1]["ok"] is False and answers[-1]["error"]["code"] == "rate_limited"
