// Keys in chrome.storage.local, in one place: the service worker writes them, content scripts read them.

// { payload, etag, salt, hash, version, fetchedAt }: the compiled rules payload of GET /api/v1/rules (with
// the console profiles in payload.consoles), its ETag, and the tenant's pseudonym salt; `hash` is the
// payload's, `version` the tenant's rule-set number (X-Veil-Rules-Version). The build's seed has only
// payload, etag (null) and salt. Written by background/rules.js and background/consoles.js:seedRules.
export const RULES_KEY = 'rules';
