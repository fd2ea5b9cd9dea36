// The Live page: agents in scope with their state, an agent's conversations, one conversation as it
// happens, and the supervisor's reply box. Data comes from /api/v1/live/…; changes from /panel pushes
// (docs/protocol.md, "Panel live events"). Everything people wrote is put in as text nodes (el()).
import { el, localTime, pageData, panelSocket, postJson, t, toast } from '../common.js';

const data = pageData();
const agents = new Map((data.agents ?? []).map((agent) => [agent.id, agent]));
const state = {
  agentId: null,
  conversations: [],
  conversation: null, // {conversation, agent, text_hidden, can_intervene}
  messages: new Map(),
  interventions: new Map(),
};
const socket = panelSocket();
const $ = (id) => document.getElementById(id);

async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error?.message ?? String(response.status));
  return body;
}

function timeOf(iso) {
  return localTime(iso, { dateStyle: 'short', timeStyle: 'short' });
}

// ---- agents ---------------------------------------------------------------------------------------

function agentItem(agent) {
  const today = agent.today ?? { messages_in: 0, messages_out: 0, behaviour: 0 };
  const state_ = agent.online ? t('Online') : t('Offline');
  const details = [];
  if (!agent.devices?.length) details.push(t('No device enrolled'));
  else if (!agent.online && agent.last_seen_at) details.push(t('Last seen %(time)s', { time: timeOf(agent.last_seen_at) }));
  if (agent.current_conversation) {
    details.push(t('In chat with %(customer)s', { customer: agent.current_conversation.customer_pseudonym }));
  }
  if (agent.last_activity_at) details.push(t('Last activity %(time)s', { time: timeOf(agent.last_activity_at) }));
  return el('li', { class: agent.id === state.agentId ? 'selected' : null, dataset: { agentId: String(agent.id) } },
    el('button', { type: 'button', class: 'live-pick', onclick: () => chooseAgent(agent.id) },
      el('span', { class: `live-dot ${agent.online ? 'on' : 'off'}`, 'aria-hidden': 'true' }),
      el('strong', {}, agent.display_name), ' ',
      el('span', { class: agent.online ? 'ok' : 'muted' }, state_)),
    el('div', { class: 'muted small' }, details.join(' · ')),
    el('div', { class: 'muted small' }, t('Today: %(incoming)s in · %(outgoing)s out · %(behaviour)s behaviour events', {
      incoming: today.messages_in, outgoing: today.messages_out, behaviour: today.behaviour,
    })));
}

function renderAgents() {
  $('live-agents').replaceChildren(...[...agents.values()].map(agentItem));
}

async function refreshAgents() {
  try {
    const body = await getJson('/api/v1/live/agents');
    agents.clear();
    for (const agent of body.agents) agents.set(agent.id, agent);
    renderAgents();
  } catch {
    // the next push or refresh catches up
  }
}

// ---- conversations --------------------------------------------------------------------------------

function conversationItem(conversation) {
  const selected = state.conversation?.conversation.id === conversation.id;
  return el('li', { class: selected ? 'selected' : null },
    el('button', { type: 'button', class: 'live-pick', onclick: () => chooseConversation(conversation.id) },
      el('strong', {}, conversation.customer_pseudonym), ' ',
      el('span', { class: 'muted' }, `${conversation.chat_account.platform} · ${conversation.chat_account.handle}`)),
    el('div', { class: 'muted small' }, timeOf(conversation.last_message_at)));
}

function renderConversations() {
  const agent = agents.get(state.agentId);
  $('live-conversations-title').textContent = agent
    ? t('Conversations of %(agent)s', { agent: agent.display_name }) : t('Conversations');
  $('live-conversations-hint').textContent = agent
    ? (state.conversations.length ? '' : t('No conversations logged yet.'))
    : t('Choose an agent to see their conversations.');
  $('live-conversations').replaceChildren(...state.conversations.map(conversationItem));
}

async function loadConversations() {
  if (state.agentId === null) return;
  const asked = state.agentId;
  try {
    const body = await getJson(`/api/v1/live/agents/${asked}/conversations`);
    if (asked !== state.agentId) return;
    state.conversations = body.conversations;
    renderConversations();
  } catch (error) {
    toast(t('Could not load: %(error)s', { error: error.message }), { level: 'warn' });
  }
}

let conversationsReload = null;
function reloadConversationsSoon() {
  // a burst of activity (a console loading its history) reloads the list once
  clearTimeout(conversationsReload);
  conversationsReload = setTimeout(loadConversations, 1000);
}

function chooseAgent(agentId) {
  state.agentId = agentId;
  state.conversations = [];
  renderAgents();
  renderConversations();
  loadConversations();
}

// ---- one conversation -----------------------------------------------------------------------------

function messageItem(message) {
  const who = message.author
    ? t('Supervisor %(name)s', { name: message.author.display_name })
    : (message.direction === 'out' ? (state.conversation?.agent.display_name ?? t('Agent')) : t('Customer'));
  const notes = [];
  if (message.edited_at) notes.push(t('edited %(time)s', { time: timeOf(message.edited_at) }));
  if (message.deleted_at) notes.push(t('deleted %(time)s', { time: timeOf(message.deleted_at) }));
  const current = [...(message.revisions ?? [])].reverse().find((r) => r.kind === 'edit')?.text ?? message.text;
  const classes = ['msg', message.direction, message.author ? 'supervisor' : '', message.deleted_at ? 'deleted' : '']
    .filter(Boolean).join(' ');
  const earlier = message.edited_at && message.text !== null
    ? el('details', {}, el('summary', {}, t('Earlier version')),
      el('p', { class: 'live-text' }, message.text),
      ...(message.revisions ?? []).filter((r) => r.kind === 'edit').slice(0, -1)
        .map((r) => el('p', { class: 'live-text' }, r.text)))
    : null;
  return el('li', { class: classes, dataset: { messageId: String(message.id) } },
    el('div', { class: 'muted small' }, `${who} · ${timeOf(message.sent_at)}${notes.length ? ` · ${notes.join(' · ')}` : ''}`),
    current === null ? null : el('p', { class: 'live-text' }, current),
    earlier);
}

function renderMessages() {
  const list = $('live-messages');
  const view = state.conversation;
  if (!view) {
    list.replaceChildren();
    return;
  }
  const items = [...state.messages.values()].sort((a, b) => a.id - b.id).map(messageItem);
  list.replaceChildren(...items);
  $('live-chat-hint').textContent = view.text_hidden
    ? t('Message text is hidden: you may not read this conversation.')
    : (items.length ? '' : t('No messages yet.'));
  list.scrollTop = list.scrollHeight; // the newest at the bottom, without scrolling the page
}

function interventionItem(row) {
  // the server marks a reply expired when someone next asks; the page need not wait for that
  const open = row.status === 'queued' || row.status === 'delivered';
  const status = open && Date.parse(row.expires_at) < Date.now() ? 'expired' : row.status;
  return el('li', { class: `intervention ${status}` },
    el('span', { class: `badge ${status}` }, t(status)), ' ',
    el('span', { class: 'live-text' }, row.text), ' ',
    el('span', { class: 'muted small' }, [row.author?.display_name, timeOf(row.sent_at ?? row.created_at), row.error]
      .filter(Boolean).join(' · ')));
}

function renderInterventions() {
  const rows = [...state.interventions.values()].sort((a, b) => a.id - b.id);
  $('live-interventions').replaceChildren(...rows.map(interventionItem));
}

async function chooseConversation(conversationId) {
  const previous = state.conversation?.conversation.id;
  if (previous && previous !== conversationId) socket.emit('unwatch_conversation', { conversation_id: previous });
  try {
    // watch first, then load: a message stored in between arrives twice and is kept once (by id)
    socket.emit('watch_conversation', { conversation_id: conversationId });
    const view = await getJson(`/api/v1/live/conversations/${conversationId}`);
    state.conversation = view;
    state.messages = new Map(view.messages.map((m) => [m.id, m]));
    state.interventions = new Map(view.interventions.map((i) => [i.id, i]));
  } catch (error) {
    toast(t('Could not load: %(error)s', { error: error.message }), { level: 'warn' });
    return;
  }
  $('live-chat-title').textContent = `${state.conversation.conversation.customer_pseudonym} · ${state.conversation.agent.display_name}`;
  $('live-intervene').hidden = !state.conversation.can_intervene;
  renderConversations();
  renderMessages();
  renderInterventions();
}

async function sendIntervention(event) {
  event.preventDefault();
  const box = $('live-intervene-text');
  const text = box.value.trim();
  if (!text) {
    toast(t('Write a reply first.'), { level: 'warn' });
    return;
  }
  const conversationId = state.conversation?.conversation.id;
  if (!conversationId) return;
  const answer = await postJson(`/api/v1/live/conversations/${conversationId}/interventions`, { text });
  if (!answer.ok) {
    toast(t('Could not send: %(error)s', { error: answer.body?.error?.message ?? answer.status }), { level: 'alert' });
    return;
  }
  box.value = '';
  const row = answer.body.intervention;
  state.interventions.set(row.id, { ...row, ...state.interventions.get(row.id) });
  renderInterventions();
  toast(t('Reply queued for the agent’s console.'));
}

// ---- pushes ---------------------------------------------------------------------------------------

socket.on('activity', (push) => {
  const agent = agents.get(push.agent_id);
  if (!agent) return;
  agent.last_activity_at = push.at;
  agent.today ??= { messages_in: 0, messages_out: 0, behaviour: 0 };
  const count = Number(push.count) || 1;
  if (push.kind === 'message_in') agent.today.messages_in += count;
  else if (push.kind === 'message_out') agent.today.messages_out += count;
  else if (push.kind === 'behaviour') agent.today.behaviour += count;
  if (push.conversation_id && push.kind.startsWith('message_')) {
    agent.current_conversation = {
      id: push.conversation_id, customer_pseudonym: push.customer_pseudonym ?? `#${push.conversation_id}`,
    };
    if (push.agent_id === state.agentId) reloadConversationsSoon();
  }
  renderAgents();
});

socket.on('agent_status', (push) => {
  const agent = agents.get(push.agent_id);
  if (!agent) return;
  agent.devices ??= [];
  let device = agent.devices.find((d) => d.id === push.device_id);
  if (!device) {
    device = { id: push.device_id, label: '', last_seen_at: null, online: false };
    agent.devices.push(device);
  }
  device.online = push.online;
  device.last_seen_at = push.at;
  agent.online = agent.devices.some((d) => d.online);
  agent.last_seen_at = push.at;
  renderAgents();
});

function onMessage(push) {
  if (push.conversation_id !== state.conversation?.conversation.id) return;
  state.messages.set(push.message.id, { ...push.message, author: push.author });
  renderMessages();
}
socket.on('message', onMessage);
socket.on('message_changed', onMessage);

const toldStatus = new Map(); // intervention id -> the status last toasted
socket.on('intervention', (push) => {
  const row = push.intervention;
  const mine = row.author?.id === data.user_id;
  if (row.conversation_id === state.conversation?.conversation.id) {
    state.interventions.set(row.id, row);
    renderInterventions();
  }
  if (mine && toldStatus.get(row.id) !== row.status && row.status !== 'queued') {
    toldStatus.set(row.id, row.status);
    const customer = state.conversations.find((c) => c.id === row.conversation_id)?.customer_pseudonym
      ?? `#${row.conversation_id}`;
    toast(t('Your reply to %(customer)s: %(status)s', { customer, status: t(row.status) }),
      { level: row.status === 'failed' || row.status === 'expired' ? 'warn' : 'info' });
  }
});

socket.on('connect', () => {
  $('live-link').hidden = true;
  // rooms are lost with the connection: watch again and catch up on what was missed
  if (state.conversation) chooseConversation(state.conversation.conversation.id);
  refreshAgents();
});
socket.on('disconnect', () => {
  $('live-link').hidden = false;
});

$('live-intervene').addEventListener('submit', sendIntervention);
renderAgents();
// "online" is also "heard from in the last two minutes": refresh now and then to let silence show
setInterval(refreshAgents, 60_000);
