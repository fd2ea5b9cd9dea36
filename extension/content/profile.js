// Reading a console profile (shared_rules/consoles/README.md): which profile fits a page, and the
// value of a field in it. Pure functions over the DOM; nothing here knows a particular console.

// A Chrome match pattern ("https://web.whatsapp.com/*", "*://*.example.com/chat/*") as a RegExp.
export function matchPatternToRegExp(pattern) {
  if (pattern === '<all_urls>') return /^(https?|wss?|file|ftp):\/\//;
  const parts = /^(\*|https?|wss?|file|ftp):\/\/(\*|\*\.[^/*]+|[^/*]*)(\/.*)$/.exec(pattern);
  if (!parts) return null;
  const [, scheme, host, path] = parts;
  const escape = (text) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const schemePart = scheme === '*' ? 'https?' : escape(scheme);
  let hostPart = '[^/]*';
  if (host.startsWith('*.')) hostPart = `(?:[^/]*\\.)?${escape(host.slice(2))}(?::\\d+)?`;
  else if (host !== '*') hostPart = `${escape(host)}(?::\\d+)?`;
  const pathPart = path.split('*').map(escape).join('.*');
  return new RegExp(`^${schemePart}://${hostPart}${pathPart}$`);
}

// The first profile whose `matches` fit the URL (ignoring its #fragment, as Chrome does), or null.
export function profileForUrl(profiles, url) {
  const bare = url.split('#')[0];
  for (const profile of profiles ?? []) {
    for (const pattern of profile.matches ?? []) {
      const re = matchPatternToRegExp(pattern);
      if (re && re.test(bare)) return profile;
    }
  }
  return null;
}

function applyPattern(value, pattern) {
  if (value == null || !pattern) return value;
  let re;
  try {
    re = new RegExp(pattern);
  } catch {
    return null;
  }
  const match = re.exec(value);
  if (!match) return null;
  return match[1] ?? match[0];
}

/**
 * The value of a profile field, read relative to `root` (see the README's "Fields"). A list of fields
 * is tried in order. `nodeText` reads one text node; the masker passes one that sees through its masks.
 */
export function readField(field, root, context = {}) {
  if (field == null || root == null) return null;
  if (Array.isArray(field)) {
    for (const each of field) {
      const value = readField(each, root, context);
      if (value !== null) return value;
    }
    return null;
  }
  const { url = '', title = null } = context;
  const spec = typeof field === 'string' ? { selector: field } : field;
  let value;
  if (spec.from === 'url') value = url;
  else if (spec.from === 'title') value = title;
  else {
    const element = spec.selector ? safeQuery(root, spec.selector) : root;
    if (!element) return null;
    value = spec.attribute ? element.getAttribute(spec.attribute) : textOf(element, context.nodeText, spec.exclude);
  }
  value = applyPattern(value, spec.pattern);
  if (typeof value !== 'string') return null;
  value = value.trim();
  return value === '' ? null : value;
}

// An element's text (textContent), each text node read by `nodeText`, without the parts in `exclude`.
export function textOf(element, nodeText = (node) => node.nodeValue, exclude = null) {
  if (element.nodeType === 3) return nodeText(element);
  let text = '';
  const walker = element.ownerDocument.createTreeWalker(element, 4 /* NodeFilter.SHOW_TEXT */);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (exclude) {
      const skipped = safeClosest(node.parentElement, exclude);
      if (skipped && element.contains(skipped)) continue;
    }
    text += nodeText(node);
  }
  return text;
}

// querySelector that treats a broken selector in a profile as "not found" instead of throwing.
export function safeQuery(root, selector) {
  try {
    return root.querySelector(selector);
  } catch {
    return null;
  }
}

export function safeMatches(element, selector) {
  if (!selector || element?.nodeType !== 1) return false;
  try {
    return element.matches(selector);
  } catch {
    return false;
  }
}

export function safeClosest(element, selector) {
  if (!selector || !element) return null;
  const start = element.nodeType === 1 ? element : element.parentElement;
  try {
    return start?.closest(selector) ?? null;
  } catch {
    return null;
  }
}

export function safeQueryAll(root, selector) {
  if (!selector) return [];
  try {
    return [...root.querySelectorAll(selector)];
  } catch {
    return [];
  }
}

// Whether a row shows a marker (README, "Markers"): an element matching `selector` (the row itself or
// inside it), or the row's whole text or one of its text nodes equal to one of `text` or matching
// `pattern`.
// A plain string is a selector.
export function hasMarker(row, marker, nodeText = (node) => node.nodeValue) {
  if (!marker) return false;
  const spec = typeof marker === 'string' ? { selector: marker } : marker;
  if (spec.selector && (safeMatches(row, spec.selector) || safeQuery(row, spec.selector))) return true;
  const texts = spec.text ?? [];
  let pattern = null;
  if (spec.pattern) {
    try {
      pattern = new RegExp(spec.pattern);
    } catch {
      pattern = null;
    }
  }
  if (texts.length === 0 && !pattern) return false;
  const fits = (value) => {
    const trimmed = value.trim();
    return trimmed !== '' && (texts.includes(trimmed) || (pattern !== null && pattern.test(trimmed)));
  };
  if (fits(textOf(row, nodeText))) return true;
  // each label inside the row: its text nodes (not every element's whole text, which on every re-render
  // of a long list would read each row's text once per element in it)
  const walker = row.ownerDocument.createTreeWalker(row, 4 /* NodeFilter.SHOW_TEXT */);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (fits(nodeText(node))) return true;
  }
  return false;
}
