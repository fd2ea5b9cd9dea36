// Keys in chrome.storage.local, in one place: the service worker writes them, content scripts read them.

// { payload, etag, salt }: the compiled rules payload of GET /api/v1/rules (with the console profiles in
// payload.consoles), its ETag, and the tenant's pseudonym salt.
export const RULES_KEY = 'rules';
