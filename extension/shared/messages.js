// Every runtime message in the extension, named sender_TO_receiver. "UI" is an
// extension page (options, popup); "SW" the service worker; "CONTENT" a
// content script in a console tab.
export const MESSAGES = Object.freeze({
  UI_TO_SW_GET_STATUS: 'ui>sw:get-status',
  UI_TO_SW_ENROL: 'ui>sw:enrol',
  UI_TO_SW_FORGET_DEVICE: 'ui>sw:forget-device',
  SW_TO_UI_STATUS_CHANGED: 'sw>ui:status-changed',
  CONTENT_TO_SW_PAGE_OPENED: 'content>sw:page-opened',
  // {events: [...]} (event protocol v1, shared/events.js); answered {ok, queued, errors} once stored
  CONTENT_TO_SW_EVENTS: 'content>sw:events',
  CONTENT_TO_SW_PSEUDONYMS: 'content>sw:pseudonyms',
  // Supervisor replies (content/intervention.js, background/interventions.js):
  // {} → {ok, interventions: [{id, text, expiresAt, conversation: {id, platform, account, pseudonym}}]}
  CONTENT_TO_SW_INTERVENTIONS: 'content>sw:interventions',
  // {chats: [{console, account?, key, customer?}]} → {ok, conversation_ids: [id|null]}
  CONTENT_TO_SW_RESOLVE_CHATS: 'content>sw:resolve-chats',
  // {id, status: 'sending'|'sent'|'failed', error?} → the server's answer ({ok, status, claimed})
  CONTENT_TO_SW_INTERVENTION_STATUS: 'content>sw:intervention-status',
  // to every tab: the list of replies changed; the content script asks for it again
  SW_TO_CONTENT_INTERVENTIONS_CHANGED: 'sw>content:interventions-changed',
  // Revealing a masked identifier (content/reveal.js, background/reveals.js):
  // {chat: {console, account?, key, customer?}, spanHash: sha-256 hex of the original} → {ok, error?}
  CONTENT_TO_SW_REVEAL: 'content>sw:reveal',
  // to every tab: the agent's grants changed (or the link dropped); revealed identifiers are hidden again
  SW_TO_CONTENT_GRANTS_CHANGED: 'sw>content:grants-changed',
});

// Who may send each message; the service worker's dispatcher checks the
// sender against this before handling anything.
export const SENDERS = Object.freeze({
  [MESSAGES.UI_TO_SW_GET_STATUS]: 'ui',
  [MESSAGES.UI_TO_SW_ENROL]: 'ui',
  [MESSAGES.UI_TO_SW_FORGET_DEVICE]: 'ui',
  [MESSAGES.SW_TO_UI_STATUS_CHANGED]: 'sw',
  [MESSAGES.CONTENT_TO_SW_PAGE_OPENED]: 'content',
  [MESSAGES.CONTENT_TO_SW_EVENTS]: 'content',
  [MESSAGES.CONTENT_TO_SW_PSEUDONYMS]: 'content',
  [MESSAGES.CONTENT_TO_SW_INTERVENTIONS]: 'content',
  [MESSAGES.CONTENT_TO_SW_RESOLVE_CHATS]: 'content',
  [MESSAGES.CONTENT_TO_SW_INTERVENTION_STATUS]: 'content',
  [MESSAGES.SW_TO_CONTENT_INTERVENTIONS_CHANGED]: 'sw',
  [MESSAGES.CONTENT_TO_SW_REVEAL]: 'content',
  [MESSAGES.SW_TO_CONTENT_GRANTS_CHANGED]: 'sw',
});
