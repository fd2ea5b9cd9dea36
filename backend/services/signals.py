"""What the services announce. `backend.realtime` decides who hears it; services never emit to sockets.

Receivers run inside the sender's transaction, before it commits: anything they push to clients must
wait for the commit (`backend.realtime.broadcast.after_commit`).
"""

from blinker import Namespace

_signals = Namespace()

# sender: the RuleSetVersion just written; kwargs: tenant_id, version_hash (the compiled payload's hash)
rule_set_saved = _signals.signal("rule-set-saved")
