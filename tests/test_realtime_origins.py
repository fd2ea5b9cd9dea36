from backend.realtime.origins import origin_checker

ENV = {"HTTP_HOST": "veil.example.com", "wsgi.url_scheme": "https"}


def test_same_origin_and_extensions_are_allowed():
    allowed = origin_checker([])
    assert allowed("https://veil.example.com", ENV)
    assert allowed("chrome-extension://clgbllapdmhkincbfbmlbdhgcllkkbpf", ENV)
    assert allowed(None, ENV), "non-browser clients send no Origin and authenticate by token"


def test_other_web_origins_are_refused_unless_configured():
    assert not origin_checker([])("https://evil.example", ENV)
    assert not origin_checker([])("http://veil.example.com", ENV), "scheme must match too"
    assert origin_checker(["https://console.acme.test"])("https://console.acme.test", ENV)
