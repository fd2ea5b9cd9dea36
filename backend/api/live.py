"""JSON for the Live page: agents in scope, an agent's conversations, one conversation, and replies
(interventions) a supervisor writes for the agent's console."""

from __future__ import annotations

from flask import g, jsonify, request

from backend.api import bp
from backend.api.payload import json_body, query_int
from backend.extensions import db
from backend.services import interventions, live


@bp.get("/live/agents")
def live_agents():
    return jsonify({"agents": live.agents_overview(g.user)})


@bp.get("/live/agents/<int:agent_id>/conversations")
def live_agent_conversations(agent_id: int):
    rows = live.agent_conversations(g.user, agent_id, limit=query_int("limit", live.CONVERSATIONS_SHOWN) or 1)
    return jsonify({"conversations": [c.to_dict() for c in rows]})


@bp.get("/live/conversations/<int:conversation_id>")
def live_conversation(conversation_id: int):
    view = live.conversation_view(g.user, conversation_id)
    db.session.commit()  # replies found past their time were marked expired
    return jsonify(view)


@bp.post("/live/conversations/<int:conversation_id>/interventions")
def create_intervention(conversation_id: int):
    data = json_body()
    row = interventions.create_intervention(g.user, conversation_id, data.get("text"),
                                            remote_addr=request.remote_addr or "")
    db.session.commit()
    return jsonify({"intervention": row.to_dict()}), 201
