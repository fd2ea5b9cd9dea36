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
 * The value of a profile field, read relative to `root` (see the README's "Fields").
 * `textOf` reads an element's text; the masker passes one that sees through its own masks.
 */
export function readField(field, root, { textOf = (el) => el.textContent, url = '', title = null } = {}) {
  if (field == null || root == null) return null;
  const spec = typeof field === 'string' ? { selector: field } : field;
  let value;
  if (spec.from === 'url') value = url;
  else if (spec.from === 'title') value = title;
  else {
    const element = spec.selector ? safeQuery(root, spec.selector) : root;
    if (!element) return null;
    value = spec.attribute ? element.getAttribute(spec.attribute) : textOf(element);
  }
  value = applyPattern(value, spec.pattern);
  if (typeof value !== 'string') return null;
  value = value.trim();
  return value === '' ? null : value;
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

// Whether a row shows a marker (deleted or edited): an element inside it, or its text or a label in it.
export function hasMarker(row, marker, textOf = (el) => el.textContent) {
  if (!marker) return false;
  if (marker.selector && (safeMatches(row, marker.selector) || safeQuery(row, marker.selector))) return true;
  const texts = marker.text ?? [];
  if (texts.length === 0) return false;
  const whole = textOf(row).trim();
  if (texts.includes(whole)) return true;
  const walker = row.ownerDocument.createTreeWalker(row, 4 /* NodeFilter.SHOW_TEXT */);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (texts.includes(node.nodeValue.trim())) return true;
  }
  return false;
}
