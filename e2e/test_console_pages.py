"""The simulated consoles in e2e/pages/ reproduce their profiles, checked without the extension.

Each page is read through its profile (shared_rules/consoles/<id>.json) by a small field reader that
follows the profile README's rules, so a page and its profile cannot drift apart unnoticed; and each page
must behave like the single-page app it stands for, or the extension's journeys on it prove nothing.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from backend.engine.consoles import load_consoles

PROFILES = {profile["id"]: profile for profile in load_consoles()}

# Fields and markers as shared_rules/consoles/README.md defines them.
READER = """
const [profile, what] = arguments;
function read(field, root, title) {
  if (field == null) return null;
  if (Array.isArray(field)) {
    for (const each of field) {
      const value = read(each, root, title);
      if (value !== null) return value;
    }
    return null;
  }
  const spec = typeof field === 'string' ? { selector: field } : field;
  let value;
  if (spec.from === 'url') value = location.href;
  else if (spec.from === 'title') value = title;
  else {
    const element = spec.selector ? root.querySelector(spec.selector) : root;
    if (!element) return null;
    if (spec.attribute) value = element.getAttribute(spec.attribute);
    else {
      const copy = element.cloneNode(true);
      if (spec.exclude) copy.querySelectorAll(spec.exclude).forEach((node) => node.remove());
      value = copy.textContent;
    }
  }
  if (value == null) return null;
  if (spec.pattern) {
    const match = new RegExp(spec.pattern).exec(value);
    if (!match) return null;
    value = match[1] ?? match[0];
  }
  value = value.trim();
  return value === '' ? null : value;
}
function marked(marker, row) {
  if (marker == null) return false;
  const spec = typeof marker === 'string' ? { selector: marker } : marker;
  if (spec.selector && (row.matches(spec.selector) || row.querySelector(spec.selector))) return true;
  const texts = [row, ...row.querySelectorAll('*')].map((element) => element.textContent.trim());
  if (spec.text && texts.some((text) => spec.text.includes(text))) return true;
  return Boolean(spec.pattern) && texts.some((text) => new RegExp(spec.pattern).test(text));
}
if (what === 'conversation') {
  const conversation = profile.conversation ?? {};
  const title = read(conversation.title, document, null);
  return {
    title,
    key: read(conversation.key, document, title) ?? title,
    customer: read(conversation.customer, document, title),
    account: read(profile.account, document, title),
  };
}
const messages = profile.messages;
return [...document.querySelectorAll(messages.row)].map((row) => ({
  id: read(messages.id, row, null),
  text: read(messages.text, row, null),
  time: read(messages.time, row, null),
  outgoing: marked(messages.outgoing, row),
  deleted: marked(messages.deleted, row),
  edited: marked(messages.edited, row),
}));
"""

# What each page's first two conversations show: a saved contact, then one titled by its phone number.
CONVERSATIONS = {
    "whatsapp": [("Li Wei", "8613812345678@c.us", "8613812345678", None),
                 ("+86 139 8765 4321", "8613987654321@c.us", "8613987654321", None)],
    "telegram_k": [("Li Wei", "777000101", "777000101", None),
                   ("+86 139 8765 4321", "777000102", "777000102", None)],
    "telegram_a": [("Li Wei", "777000101", "777000101", None),
                   ("+86 139 8765 4321", "777000102", "777000102", None)],
    "messenger": [("Li Wei", "100012345678901", "100012345678901", None),
                  ("+86 139 8765 4321", "100012345678902", "100012345678902", None)],
    "generic": [("Li Wei", "c-1001", "+8613812345678", "agent7@acme.example"),
                ("+86 139 8765 4321", "c-1002", "+8613987654321", "agent7@acme.example")],
}


def test_every_profile_has_expectations_here():
    assert set(CONVERSATIONS) == set(PROFILES)


class ConsolePage:
    def __init__(self, driver, profile: dict, pages):
        self.driver = driver
        self.profile = profile
        self.pages = pages

    def load(self, query: str = "") -> ConsolePage:
        self.driver.get("about:blank")  # a hash-only change would keep the old page and its state
        self.driver.get(f"{self.pages.url}/{self.profile['id']}.html{query}")
        WebDriverWait(self.driver, 10).until(lambda d: d.execute_script("return Boolean(window.consoleSim)"))
        return self

    def sim(self, expression: str, *args):
        return self.driver.execute_script(f"return consoleSim.{expression}", *args)

    def conversation(self) -> dict:
        return self.driver.execute_script(READER, self.profile, "conversation")

    def rows(self) -> list[dict]:
        return self.driver.execute_script(READER, self.profile, "rows")

    @property
    def composer(self):
        return self.driver.find_element(By.CSS_SELECTOR, self.profile["composer"]["input"])

    def type(self, text: str) -> None:
        self.composer.click()
        self.composer.send_keys(text)

    def composer_text(self) -> str:
        return self.driver.execute_script(
            "const input = arguments[0]; return input.isContentEditable ? input.innerText : input.value",
            self.composer).strip()

    def wait_recorded(self, count: int) -> list[dict]:
        WebDriverWait(self.driver, 5, poll_frequency=0.05).until(lambda d: len(self.pages.recorded()) >= count)
        return self.pages.recorded()


@pytest.fixture(params=sorted(PROFILES))
def page(request, plain_browser, console_pages) -> ConsolePage:
    return ConsolePage(plain_browser, PROFILES[request.param], console_pages).load()


def test_enter_sends_and_shift_enter_starts_a_new_line(page):
    page.type("Order 1042")
    ActionChains(page.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    assert page.sim("sent") == []
    page.composer.send_keys("is ready")
    assert page.sim("draft") == "Order 1042\nis ready"

    page.composer.send_keys(Keys.ENTER)

    assert page.sim("sent") == ["Order 1042\nis ready"]  # one send() ever ran, so one POST ever left
    assert page.wait_recorded(1) == [{"console": page.profile["id"], "conversation": page.sim("active"),
                                      "text": "Order 1042\nis ready"}]
    assert page.composer_text() == ""
    last = page.rows()[-1]
    assert (last["text"], last["outgoing"]) == ("Order 1042\nis ready", True)


def test_send_button_sends_the_apps_own_draft_not_the_dom(page):
    page.type("Size M, please")
    # A change made behind the app's back, with no input event, is not in the app's draft.
    page.driver.execute_script(
        "const input = arguments[0]; if (input.isContentEditable) input.textContent = arguments[1];"
        " else input.value = arguments[1];", page.composer, "something else")

    page.driver.find_element(By.CSS_SELECTOR, page.profile["composer"]["send"]).click()

    assert page.sim("sent") == ["Size M, please"]
    assert [body["text"] for body in page.wait_recorded(1)] == ["Size M, please"]


def test_enter_during_ime_composition_does_not_send(page):
    page.type("ni hao")
    page.driver.execute_script("""
        const input = arguments[0];
        const enter = (type) => input.dispatchEvent(new KeyboardEvent(type, {
            key: 'Enter', code: 'Enter', isComposing: true, bubbles: true, cancelable: true }));
        input.dispatchEvent(new CompositionEvent('compositionstart', { bubbles: true }));
        enter('keydown');
        enter('keypress');
        input.dispatchEvent(new CompositionEvent('compositionend', { bubbles: true }));
        enter('keydown');  // Chrome's keydown for the Enter that confirmed the word
    """, page.composer)
    assert page.sim("sent") == []

    page.composer.send_keys(Keys.ENTER)
    assert page.sim("sent") == ["ni hao"]


def test_received_message_is_a_profile_row_and_only_sent_rows_are_outgoing(page):
    page.type("We have it in blue")
    page.composer.send_keys(Keys.ENTER)
    message_id = page.sim("receive(arguments[0])", "Is it waterproof?")

    rows = page.rows()
    messages = page.sim("messages()")
    assert [row["text"] for row in rows] == [message["text"] for message in messages]
    assert [row["outgoing"] for row in rows] == [message["dir"] == "out" for message in messages]
    assert rows[-1]["text"] == "Is it waterproof?"
    assert rows[-2]["text"] == "We have it in blue"
    if page.profile["messages"].get("id"):
        assert [row["id"] for row in rows] == [message["id"] for message in messages]
        assert rows[-1]["id"] == message_id
    if page.profile["messages"].get("time"):
        assert all(row["time"] for row in rows)
    assert not any(row["deleted"] or row["edited"] for row in rows)


def test_edited_and_deleted_messages_show_the_profiles_markers(page):
    message_id = page.sim("receive(arguments[0])", "The price is 100")
    count = len(page.rows())

    page.sim("editMessage(arguments[0], arguments[1])", message_id, "The price is 90")
    rows = page.rows()
    assert (rows[-1]["text"], rows[-1]["edited"], rows[-1]["deleted"]) == ("The price is 90", True, False)
    assert not any(row["edited"] for row in rows[:-1])

    page.sim("deleteMessage(arguments[0])", message_id)
    rows = page.rows()
    if page.profile["messages"]["deleted"].get("removed"):
        assert len(rows) == count - 1
        assert message_id not in [row["id"] for row in rows]
    else:
        assert len(rows) == count
        assert rows[-1]["deleted"]
        assert rows[-1]["text"] != "The price is 90"
    assert not any(row["deleted"] for row in rows[:count - 1])


@pytest.mark.parametrize("index", [0, 1])
def test_conversation_fields_resolve_through_the_profile(page, index):
    key = page.sim("conversations()")[index]["key"]
    page.sim("open(arguments[0])", key)
    title, conversation_key, customer, account = CONVERSATIONS[page.profile["id"]][index]
    assert page.conversation() == {"title": title, "key": conversation_key, "customer": customer,
                                   "account": account}
    assert conversation_key == key


def test_rebuilt_rows_lose_dom_edits_and_older_rows_go_on_top(page):
    mark_rows = "document.querySelectorAll(arguments[0]).forEach((row) => row.dataset.testMark = '1')"
    marked = "return [...document.querySelectorAll(arguments[0])].map((row) => row.dataset.testMark === '1')"
    row_selector = page.profile["messages"]["row"]

    page.driver.execute_script(mark_rows, row_selector)
    page.sim("receive(arguments[0])", "Hello again")
    assert not any(page.driver.execute_script(marked, row_selector))

    page.driver.execute_script(mark_rows, row_selector)
    page.sim("loadOlder()")
    assert page.driver.execute_script(marked, row_selector)[:3] == [False, False, True]
    assert [row["text"] for row in page.rows()[:2]] == ["Earlier message 1", "Earlier message 2"]

    page.sim("open(arguments[0])", page.sim("conversations()")[2]["key"])
    assert not any(page.driver.execute_script(marked, row_selector))


def test_numbers_appear_split_linked_and_in_titles(page):
    body = page.driver.find_element(By.TAG_NAME, "body")
    split = page.driver.find_elements(By.CSS_SELECTOR, 'a[href="tel:+8613812345678"] + span')
    assert split and split[0].text == "138"
    assert "+86 13812345678" in [row["text"].removeprefix("Call me: ") for row in page.rows()]
    for link in ('a[href="tel:+8613812345678"][title="+86 138 1234 5678"][aria-label*="+86 138 1234 5678"]',
                 'a[href="mailto:li.wei@example.com"][title="li.wei@example.com"]'):
        assert page.driver.find_elements(By.CSS_SELECTOR, link), link
    assert "+86 139 8765 4321" in body.text  # a conversation titled by the customer's number


def test_the_customer_writes_on_a_timer(page):
    page.load("?incoming=100")
    count = len(page.rows())
    WebDriverWait(page.driver, 5, poll_frequency=0.05).until(lambda d: len(page.rows()) >= count + 2)
    assert not page.rows()[-1]["outgoing"]


def test_mention_menu_takes_enter(plain_browser, console_pages):
    page = ConsolePage(plain_browser, PROFILES["telegram_a"], console_pages).load()
    page.type("Ask @li")
    assert page.sim("mentionsOpen")

    page.composer.send_keys(Keys.ENTER)
    assert page.sim("sent") == []
    assert page.sim("draft") == "Ask @liwei "
    assert not page.sim("mentionsOpen")

    page.composer.send_keys("please", Keys.ENTER)
    assert page.sim("sent") == ["Ask @liwei please"]
