"""What the services announce. `backend.realtime` decides who hears it; services never emit to sockets.

Receivers run inside the sender's transaction, before it commits: anything they push to clients must
wait for the commit (`backend.realtime.broadcast.after_commit`).
"""

from blinker import Namespace

_signals = Namespace()

# sender: the RuleSetVersion just written; kwargs: tenant_id, version_hash (the compiled payload's hash)
rule_set_saved = _signals.signal("rule-set-saved")

# Chat records and behaviour, sent once a row is inserted (never for a retried event stored before).
# sender: None; kwargs: tenant_id, agent_id, conversation_id, message_id, direction, at (when it was sent)
message_stored = _signals.signal("message-stored")
# sender: None; kwargs: tenant_id, agent_id, conversation_id, message_id, revision_id, kind ("edit" | "delete"), at
message_changed = _signals.signal("message-changed")
# sender: None; kwargs: tenant_id, agent_id, conversation_id (or None), event_id, type (a BehaviourEvent type), at
behaviour_recorded = _signals.signal("behaviour-recorded")
