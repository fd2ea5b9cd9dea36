const RULES_PATH = '/api/v1/rules';
const TIMEOUT_MS = 30_000;

/**
 * Keeps the tenant's compiled rules (with the console profiles they carry)
 * cached through `store`, for the content scripts to read. The worker asks on
 * every connect and whenever the server pushes `rules_changed`; the ETag makes
 * an unchanged answer a bodiless 304.
 */
export function createRulesSync({ store, onRules = () => {}, fetchImpl = globalThis.fetch, log = console }) {
  let queue = Promise.resolve();

  async function fetchRules(enrolment, pushedVersion) {
    const cached = await store.loadRules();
    if (pushedVersion && cached?.hash === pushedVersion) return cached;
    const headers = { Accept: 'application/json', Authorization: `Bearer ${enrolment.token}` };
    if (cached?.etag) headers['If-None-Match'] = cached.etag;
    const response = await fetchImpl(`${enrolment.serverUrl}${RULES_PATH}`, {
      headers,
      credentials: 'omit',
      cache: 'no-store',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (response.status === 304 && cached) return cached;
    if (!response.ok) throw new Error(`GET ${RULES_PATH} answered ${response.status}`);
    const payload = await response.json();
    if (typeof payload?.hash !== 'string') throw new Error(`GET ${RULES_PATH} gave no payload hash`);
    const rules = {
      payload,
      etag: response.headers.get('ETag') ?? `"${payload.hash}"`,
      salt: cached?.salt ?? '',
      hash: payload.hash,
      version: Number(response.headers.get('X-Veil-Rules-Version')) || null,
      fetchedAt: new Date().toISOString(),
    };
    await store.saveRules(rules);
    return rules;
  }

  /**
   * Brings the cache up to date; one request at a time. `pushedVersion` is the
   * hash from `rules_changed`: when it is already cached, nothing is fetched.
   * `onRules(rules)` hears the cached rules after each sync. A failure is
   * logged and leaves the cache as it was, to be retried at the next connect
   * or push.
   */
  function sync(enrolment, pushedVersion = null) {
    queue = queue.then(async () => {
      try {
        await onRules(await fetchRules(enrolment, pushedVersion));
      } catch (error) {
        log.warn('Veil: could not fetch the rules', error);
      }
    });
    return queue;
  }

  return { sync };
}
