// The behaviour shared by the simulated chat consoles in e2e/pages/. Each page describes its console's
// markup (renderRow, renderConversation); this file gives every page what real single-page consoles do
// and test pages tend to forget:
// - the message list is rebuilt from in-memory state on every change, so DOM edits made by an extension
//   are lost and must be re-applied; older messages are inserted at the top without a rebuild;
// - the text sent is the app's own draft, updated on `input` events, never read from the DOM at send time;
// - Enter sends (on keydown or keypress, as the page says), Shift+Enter starts a new line, Enter during IME
//   composition does nothing, and an open mention menu takes Enter for itself.
// Every message sent is kept in consoleSim.sent and POSTed to /e2e/sent, so a test can prove a blocked
// message never left. `?incoming=<ms>` makes the customer write on a timer.
(() => {
  'use strict';

  const AGENT = 'Demo Co Sales';
  const SPLIT_NUMBER = 'Call me: <a href="tel:+8613812345678">+86</a> <span>138</span><span>1234</span>5678';
  const CUSTOMERS = [
    {
      name: 'Li Wei', phone: '+86 138 1234 5678', email: 'li.wei@example.com',
      messages: [
        ['in', 'Hello, is the blue jacket still in stock?'],
        ['out', 'Yes, in sizes M and L.'],
        ['in', { html: SPLIT_NUMBER }],
        ['out', 'Thank you, we will call you after six.'],
      ],
    },
    {
      name: null, phone: '+86 139 8765 4321', email: 'wang.fang@example.com',
      messages: [
        ['in', 'Can you send the invoice to wang.fang@example.com?'],
        ['out', 'Of course, today.'],
      ],
    },
    {
      name: 'Emma Clarke', phone: '+44 7700 900123', email: 'emma.clarke@example.co.uk',
      messages: [['in', 'Has my order shipped?']],
    },
  ];
  const INCOMING = ['Are you there?', 'My number is +86 138 1234 5678', 'Thanks!', 'Any news?'];

  const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (time) => {
    const date = new Date(time);
    return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  };
  const day = (time) => {
    const date = new Date(time);
    return `${pad(date.getDate())}/${pad(date.getMonth() + 1)}/${date.getFullYear()}`;
  };
  // A message's markup: seeded messages may carry HTML (a number split over several elements).
  const content = (message) => message.html ?? escapeHtml(message.text);

  function create(page) {
    const composer = page.composer;
    const editable = composer.isContentEditable;
    const enterEvent = page.enterEvent ?? 'keydown';
    let serial = 0;

    const makeMessage = (conversation, dir, fields) => {
      serial += 1;
      const message = { dir, text: '', html: null, time: Date.now(), deleted: false, edited: false, ...fields };
      message.id = page.messageId ? page.messageId(conversation, message, serial) : String(serial);
      return message;
    };

    const conversations = CUSTOMERS.map((customer) => {
      const conversation = {
        ...customer,
        digits: customer.phone.replace(/\D/g, ''),
        title: customer.name ?? customer.phone,
        draft: '',
        earlier: 0,
        messages: [],
      };
      conversation.key = page.keyOf(conversation);
      const start = Date.now() - customer.messages.length * 60_000;
      customer.messages.forEach(([dir, body], index) => {
        const fields = typeof body === 'string' ? { text: body } : { text: body.html.replace(/<[^>]*>/g, ''), ...body };
        conversation.messages.push(makeMessage(conversation, dir, { ...fields, time: start + index * 60_000 }));
      });
      return conversation;
    });
    const find = (key) => {
      const conversation = conversations.find((c) => c.key === String(key));
      if (!conversation) throw new Error(`no conversation ${key}`);
      return conversation;
    };
    const locate = (id) => {
      for (const conversation of conversations) {
        const index = conversation.messages.findIndex((m) => m.id === String(id));
        if (index >= 0) return { conversation, index, message: conversation.messages[index] };
      }
      throw new Error(`no message ${id}`);
    };

    let active = conversations[0];
    let draft = '';
    let composing = false;
    let mentionNames = [];
    let incomingTimer = null;
    let incomingCount = 0;

    const rowsHtml = (messages) => messages.map((message) => page.renderRow(message, active)).join('');
    const renderRows = () => {
      page.list.innerHTML = (page.prelude ? page.prelude(active) : '') + rowsHtml(active.messages);
      sim.renders += 1;
    };
    const render = () => {
      page.renderConversation(active, conversations);
      renderRows();
    };

    const readComposer = () => (editable ? composer.innerText : composer.value);
    const writeComposer = (text) => {
      if (editable) composer.textContent = text;
      else composer.value = text;
    };
    const caretToEnd = () => {
      if (!editable) return;
      const range = document.createRange();
      range.selectNodeContents(composer);
      range.collapse(false);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    };

    const showMentions = (names) => {
      mentionNames = names;
      page.mentions.render(names);
    };
    const updateMentions = () => {
      if (!page.mentions) return;
      const typed = /(?:^|\s)@(\w*)$/.exec(draft);
      showMentions(typed ? page.mentions.names.filter((name) => name.startsWith(typed[1].toLowerCase())) : []);
    };
    const pickMention = (name) => {
      draft = draft.replace(/@\w*$/, `@${name} `);
      writeComposer(draft);
      caretToEnd();
      showMentions([]);
    };

    const send = () => {
      const text = draft.trim();
      if (!text) return;
      draft = '';
      writeComposer('');
      if (page.mentions) showMentions([]);
      active.messages.push(makeMessage(active, 'out', { text }));
      sim.sent.push(text);
      fetch('/e2e/sent', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ console: page.id, conversation: active.key, text }),
      }).catch(() => {}); // opened from a file or a server without the recorder
      render();
    };

    composer.addEventListener('input', () => {
      draft = readComposer();
      updateMentions();
    });
    composer.addEventListener('compositionstart', () => {
      composing = true;
    });
    composer.addEventListener('compositionend', () => {
      composing = false;
      draft = readComposer();
    });
    composer.addEventListener(enterEvent, (event) => {
      if (event.key !== 'Enter') return;
      if (event.isComposing || composing || event.keyCode === 229) return; // the IME confirms a word
      if (mentionNames.length) {
        event.preventDefault();
        pickMention(mentionNames[0]);
        return;
      }
      if (event.shiftKey) return; // the browser inserts the line break
      event.preventDefault();
      send();
    });
    composer.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && mentionNames.length) showMentions([]);
    });
    page.sendButton.addEventListener('click', (event) => {
      event.preventDefault();
      send();
    });
    page.form?.addEventListener('submit', (event) => {
      event.preventDefault();
      send();
    });
    document.addEventListener('mousedown', (event) => {
      const item = event.target.closest('[data-sim-mention]');
      if (item) {
        event.preventDefault(); // keep the focus in the composer
        pickMention(item.dataset.simMention);
      }
    });
    document.addEventListener('click', (event) => {
      const item = event.target.closest('[data-sim-open]');
      if (item) {
        event.preventDefault();
        sim.open(item.dataset.simOpen);
      }
    });

    const sim = {
      sent: [],
      renders: 0,
      get active() { return active.key; },
      get draft() { return draft; },
      get mentionsOpen() { return mentionNames.length > 0; },
      conversations: () => conversations.map(({ key, title, phone, email }) => ({ key, title, phone, email })),
      messages: () => active.messages.map(({ id, dir, text, deleted, edited }) => ({ id, dir, text, deleted, edited })),

      open(key) {
        active.draft = draft;
        active = find(key);
        draft = active.draft;
        writeComposer(draft);
        if (page.mentions) showMentions([]);
        render();
      },
      receive(text, options = {}) {
        const conversation = options.conversation ? find(options.conversation) : active;
        const message = makeMessage(conversation, 'in', { text, html: options.html ?? null });
        conversation.messages.push(message);
        if (conversation === active) render();
        else page.renderConversation(active, conversations);
        return message.id;
      },
      loadOlder(count = 2) {
        const first = active.messages[0]?.time ?? Date.now();
        const older = [];
        for (let n = count; n >= 1; n -= 1) {
          active.earlier += 1;
          older.push(makeMessage(active, active.earlier % 2 ? 'in' : 'out', {
            text: `Earlier message ${active.earlier}`,
            time: first - n * 3_600_000,
          }));
        }
        active.messages.unshift(...older);
        page.list.insertAdjacentHTML('afterbegin', rowsHtml(older));
        return older.map((message) => message.id);
      },
      deleteMessage(id) {
        const { conversation, index, message } = locate(id);
        if (page.deletedRemovesRow) conversation.messages.splice(index, 1);
        else message.deleted = true;
        if (conversation === active) renderRows();
      },
      editMessage(id, text) {
        const { conversation, message } = locate(id);
        Object.assign(message, { text, html: null, edited: true });
        if (conversation === active) renderRows();
      },
      startIncoming(every) {
        sim.stopIncoming();
        incomingTimer = setInterval(() => sim.receive(INCOMING[incomingCount++ % INCOMING.length]), every);
      },
      stopIncoming() {
        clearInterval(incomingTimer);
      },
    };

    render();
    const every = Number(new URLSearchParams(location.search).get('incoming'));
    if (every > 0) sim.startIncoming(every);
    window.consoleSim = sim;
    return sim;
  }

  window.ConsoleSim = { create, escapeHtml, content, clock, day, AGENT };
})();
