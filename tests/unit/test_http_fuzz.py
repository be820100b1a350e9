"""Property-based fuzz of the HTTP edge, in process: Flask's WSGI app with a real SQLite inbox.

Every generated request is built as the WSGI environ a server would hand over (werkzeug's
EnvironBuilder, then the request line, headers, framing and body set raw) and run through
`werkzeug.test.run_wsgi_app`, the engine of Flask's test client. A model of the README's
"HTTP endpoints" contract, written here independently of webhook_app, says what each request
must get; the inbox is counted before and after every request. For every request:

- never a 5xx (the inbox is writable here, so not even a 503);
- a row appears only for a POST answered 200, and only holding bytes that carry a valid
  X-Hub-Signature-256 under one of the two configured secrets;
- a validly signed envelope (a JSON object with an `entry` list, UTF-8, at most `LIMIT` bytes and
  `MAX_DEPTH` levels) is answered 200 and recorded byte for byte; validly signed but not an envelope
  is 400; over the limit 413; a body within the limit without a valid signature 403;
- the handshake echoes hub.challenge exactly when hub.mode and hub.verify_token match, else 403.

Edge cases the fuzz found (and that are now fixed) have their own tests at the end
(with a minimal reproducer), and the properties check only the safety invariants for those inputs:
a body cut short of its Content-Length, NaN/Infinity in a signed envelope, and raw non-UTF-8 bytes
in the handshake's query string (not generated: gunicorn refuses them before the app).

Three properties send 10,100 requests in all (EXAMPLES); the inbox is the real SQLite one, opened
with synchronous=OFF so that thousands of appends do not each wait for an fsync.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import random
import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_to_bytes

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, NoMoreData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.harness import FIXTURES, SECRET
from webhook_app import create_app
from workers.inbox.database import Inbox
from workers.runtime.config import settings_from_dict

LIMIT = 4096  # web.max_body_bytes of the app under test
MAX_DEPTH = 64  # README: deeper nesting is refused with 400
SECRETS = (SECRET, "instagram-secret")
# A verify token with reserved and non-ASCII characters, so that query decoding is exercised too.
VERIFY = "vérify tok+en&=✓/?#"
SIG = "X-Hub-Signature-256"

# One app per test function (the fixture is function scoped: built once, reused by every example).
FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture()
def app(tmp_path):
    config = settings_from_dict({
        "meta": {"app_secrets": list(SECRETS), "verify_token": VERIFY},
        "queue": {"data_dir": str(tmp_path)}, "web": {"max_body_bytes": LIMIT}}, env={})
    app = create_app(config, start_relay=False)
    # The same SQLite inbox, without an fsync per commit: thousands of deliveries in seconds.
    state = app.extensions["inbox_relay"]
    app.extensions["inbox_relay"] = replace(state, inbox=Inbox(state.inbox.path, synchronous="OFF"))
    return app


# How many requests each property sends (one per example): 10,100 in all.
EXAMPLES = {"test_any_post_to_the_webhook": 4000, "test_signed_envelopes_are_recorded_exactly": 2500,
            "test_any_method_path_and_query": 3600}


@pytest.fixture()
def sent(request):
    """Counts the requests and recorded rows of a property test; it must send all its examples."""
    counter = {"requests": 0, "rows": 0}
    failed_before = request.session.testsfailed
    yield counter
    print(f"\n{request.node.name}: {counter['requests']} requests, {counter['rows']} recorded")
    if request.session.testsfailed == failed_before:  # a failing property stops early: no second report
        assert counter["requests"] >= EXAMPLES[request.node.name]


# --------------------------------------------------------------------------- requests and answers

@dataclass
class Req:
    """One request as the WSGI server hands it over (the path already percent-decoded)."""

    method: str = "POST"
    path: bytes = b"/webhook"
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # what wsgi.input yields
    content_length: str | None = None
    terminated: bool = False  # wsgi.input_terminated: the server framed (e.g. dechunked) the body
    broken: BaseException | None = None  # reading wsgi.input raises this (bad chunk, cut, timeout)


class _FailingInput:
    """wsgi.input of a client that broke the framing: reading raises, as gunicorn's Body does."""

    def __init__(self, error: BaseException):
        self.error = error

    def read(self, *_args):
        raise self.error.with_traceback(None)  # one instance, raised again and again

    readline = read


def _base_environ() -> dict:
    builder = EnvironBuilder(method="GET", path="/")
    env = builder.get_environ()
    builder.close()
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH", "wsgi.input"):
        env.pop(key, None)
    return env


BASE_ENVIRON = _base_environ()  # server name, wsgi.*: the rest is set per request


def _environ(req: Req) -> dict:
    env = dict(BASE_ENVIRON)
    env["REQUEST_METHOD"] = req.method
    env["PATH_INFO"] = req.path.decode("latin-1")  # PEP 3333: bytes as latin-1 text
    env["QUERY_STRING"] = req.query
    for name, value in req.headers.items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    if req.content_length is not None:
        env["CONTENT_LENGTH"] = req.content_length
    env["wsgi.input"] = _FailingInput(req.broken) if req.broken else io.BytesIO(req.body)
    if req.terminated:
        env["wsgi.input_terminated"] = True
    return env


@dataclass
class Answer:
    status: int
    headers: dict
    data: bytes
    new_rows: list[bytes]


def send(app, req: Req) -> Answer:
    """Run `req` through the app; report the answer and the inbox rows it added (ids are increasing)."""
    inbox = app.extensions["inbox_relay"].inbox
    before = inbox.list(limit=1)
    newest = before[0].id if before else 0
    app_iter, status, headers = run_wsgi_app(app, _environ(req), buffered=True)
    data = b"".join(app_iter)
    added = [d.body for d in reversed(inbox.list(limit=3)) if d.id > newest]
    return Answer(int(status.split()[0]), dict(headers), data, added)


# --------------------------------------------------------------------------- the model (oracle)

def _hmac_hex(secret: str, body: bytes, algorithm=hashlib.sha256) -> str:
    return hmac.new(secret.encode("utf-8"), body, algorithm).hexdigest()


def _authentic(header: str | None, body: bytes) -> bool:
    """Whether `header` (spaces and hex case aside) is the SHA-256 HMAC of `body` under a secret."""
    if header is None:
        return False
    value = header.strip(" \t")
    return value[:7].lower() == "sha256=" and value[7:].lower() in {_hmac_hex(s, body) for s in SECRETS}


def _content_length(value: str) -> int:
    """Content-Length as the edge reads it: ASCII digits between spaces/tabs, else 0 (no body)."""
    value = value.strip(" \t")
    return max(0, int(value)) if re.fullmatch(r"-?[0-9]+", value) else 0


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth(text: str) -> int:
    """How deep a (valid) JSON text nests: brackets outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def classify(body: bytes) -> str:
    """'envelope', 'not-envelope', or 'nan' (JSON only with NaN/Infinity: see the test at the end)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "not-envelope"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return "not-envelope"
    except ValueError:
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return "not-envelope"
        return "nan"
    if not (isinstance(value, dict) and isinstance(value.get("entry"), list)):
        return "not-envelope"
    return "envelope" if _depth(text) <= MAX_DEPTH else "not-envelope"


@dataclass
class Expect:
    statuses: set[int] | None  # None: a known departure from the contract, invariants only
    body: bytes | None = None  # the row a 200 must add
    handshake: bytes | None = None  # the challenge a 200 handshake (GET) must echo
    health: bool = False  # GET /healthz: the counts must be the inbox's


def read_by_edge(req: Req) -> tuple[str, bytes | None]:
    """What the edge should make of the framing: ('read', body), 'too-large', 'bad-framing', 'cut'."""
    te = req.headers.get("Transfer-Encoding")
    chunked = te is not None and "chunked" in {t.strip(" \t").lower() for t in te.split(",")}
    length = None if chunked or req.content_length is None else _content_length(req.content_length)
    if length is not None and length > LIMIT:
        return "too-large", None
    if req.broken is not None:
        return "bad-framing", None
    if length is not None and length > len(req.body):
        return "cut", req.body  # fewer bytes than Content-Length: a cut connection (see the end)
    if req.terminated:
        body = req.body  # the server framed it (chunked, or gunicorn's Content-Length reader)
    elif length is None:
        body = b""  # neither a length nor a server that frames: no body
    else:
        body = req.body[:length]
    if len(body) > LIMIT:
        return "too-large", None
    return "read", body


@dataclass(frozen=True)
class SigSpec:
    form: str
    secret: str
    target: str  # which bytes are signed: "read" (what the edge reads), "sent", "other"


VALID_FORMS = ("canonical", "upper-hex", "mixed-hex")  # the hex digits' case does not matter
LENIENT_FORMS = ("upper-prefix", "padded")  # either accepted or refused, consistently
INVALID_FORMS = ("absent", "empty", "prefix-only", "sha1", "bare-hex", "truncated", "extended",
                 "flipped", "non-hex", "doubled", "garbage")


def signature_header(spec: SigSpec, signed: bytes, draw=None) -> str | None:
    """The header for `spec` over `signed`; `draw` picks the position or text of a broken one."""
    form = spec.form
    if form in ("absent", "empty", "prefix-only", "garbage"):
        return {"absent": None, "empty": "", "prefix-only": "sha256=",
                "garbage": draw(LATIN1) if draw else ""}[form]
    if form == "sha1":
        return "sha1=" + _hmac_hex(spec.secret, signed, hashlib.sha1)
    digest = _hmac_hex(spec.secret, signed)
    index = draw(BYTE) if draw and form in ("flipped", "non-hex") else 0
    i = index % 64
    if form == "flipped":
        return "sha256=" + digest[:i] + ("1" if digest[i] == "0" else "0") + digest[i + 1:]
    if form == "non-hex":
        return "sha256=" + digest[:i] + "gé-Z"[index % 4] + digest[i + 1:]
    return {
        "canonical": "sha256=" + digest,
        "upper-hex": "sha256=" + digest.upper(),
        "mixed-hex": "sha256=" + "".join(c.upper() if n % 2 else c for n, c in enumerate(digest)),
        "upper-prefix": "SHA256=" + digest,
        "padded": " sha256=" + digest + "\t",
        "bare-hex": digest,
        "truncated": "sha256=" + digest[:-1],
        "extended": "sha256=" + digest + "0",
        "doubled": f"sha256={digest},sha256={digest}",
    }[form]


def expect_post(req: Req, spec: SigSpec | None, signed: bytes | None) -> Expect:
    """The contract for POST /webhook."""
    state, body = read_by_edge(req)
    if state == "too-large":
        return Expect({413})
    if state == "bad-framing":
        return Expect({400})
    if state == "cut":
        return Expect(None)
    assert body is not None
    if spec is None or signed != body or spec.secret not in SECRETS or spec.form in INVALID_FORMS:
        return Expect({403})
    kind = classify(body)
    if kind == "nan":
        return Expect(None)
    accepted = {200} if kind == "envelope" else {400}
    return Expect(accepted | {403} if spec.form in LENIENT_FORMS else accepted, body=body)


def expect_handshake(pairs: list[tuple[bytes, bytes]]) -> Expect:
    """The contract for GET/HEAD /webhook, from the decoded query pairs."""
    first: dict[bytes, bytes] = {}
    for key, value in pairs:
        first.setdefault(key, value)
    if first.get(b"hub.mode") == b"subscribe" and first.get(b"hub.verify_token") == VERIFY.encode():
        return Expect({200}, handshake=first.get(b"hub.challenge", b""))
    return Expect({403})


def check(answer: Answer, req: Req, expect: Expect) -> None:
    """The invariants for every request, then the expected answer."""
    where = f"{req.method} {req.path!r}?{req.query!r}"
    assert answer.status < 500, f"{where}: {answer.status} {answer.data[:200]!r}"
    if req.method.upper() == "POST":
        assert len(answer.new_rows) == (1 if answer.status == 200 else 0), where
    else:
        assert answer.new_rows == [], where
    for row in answer.new_rows:
        assert _authentic(req.headers.get(SIG), row), f"{where}: recorded bytes not signed: {row[:100]!r}"
        assert req.body.startswith(row), f"{where}: recorded bytes were not sent"
        assert classify(row) in ("envelope", "nan"), f"{where}: recorded a non-envelope: {row[:100]!r}"
    if expect.statuses is not None:
        assert answer.status in expect.statuses, f"{where}: {answer.status} {answer.data[:200]!r}"
    if answer.status == 200 and expect.body is not None:
        assert answer.new_rows == [expect.body], where
    if answer.status == 200 and expect.handshake is not None and req.method.upper() == "GET":
        challenge = expect.handshake
        try:
            challenge.decode("utf-8")
        except UnicodeDecodeError:  # not UTF-8: echoed with the invalid bytes left percent-encoded
            assert answer.data, where
        else:
            assert answer.data == challenge, where
        assert answer.headers["Content-Type"].startswith("text/plain"), where
    if req.method.upper() == "HEAD":
        assert answer.data == b"", where
    elif answer.status >= 400:  # errors are short JSON, never an HTML page
        assert "error" in json.loads(answer.data), f"{where}: {answer.data[:200]!r}"


# --------------------------------------------------------------------------- strategies: bodies
# Every strategy is built once, at module level: hypothesis validates each new strategy object,
# which would cost more than the request itself if done per example.

def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """st.one_of with weights (one_of would merge a strategy given twice into one choice)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(table.__getitem__)


BYTE = st.integers(0, 255)
OFFSET = st.integers(0, 2 * LIMIT)
SEEDS = st.integers(0, 2**32)
CHARS = st.characters(exclude_categories=())  # surrogates included
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(CHARS, max_size=6)
           | st.sampled_from(["page", "instagram", "entry", "\u2028", "\x00", "\\", '"', "\ud800", "é"]))
KEYS = st.text(CHARS, max_size=6) | st.sampled_from(["object", "id", "time", "messaging", "changes"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(KEYS, inner, max_size=3), max_leaves=4)
OBJECTS = st.sampled_from(["page", "instagram"]) | SCALARS
FIXTURE_BODIES = [p.read_bytes() for p in sorted((FIXTURES / "webhooks").glob("*.json"))]
FIXTURES_ST = st.sampled_from(FIXTURE_BODIES)
WHITESPACE = [b"", b"", b" ", b"\n", b"\r\n", b"\t \n"]
DUMPS = [{"separators": (",", ":")}, {}, {"indent": 2}, {"ensure_ascii": False}, {"sort_keys": True}]
STYLES = st.sampled_from(list(itertools.product(DUMPS, WHITESPACE, WHITESPACE)))
NEAR_JSON = st.sampled_from([
    b'{"entry":[1,]}', b"{'entry': []}", b'{"entry":[]} {"entry":[]}', b'{"entry":[]}x', b"{entry:[]}",
    b'{"entry":[]}\x00', b'{"entry":[] /* c */}', b'{"entry":[01]}', b'{"entry":["\\x41"]}',
    b'{"entry":["\t"]}', b'{"entry":"[]"}', b'{"entry":null}', b'{"entry":{}}', b'{"Entry":[]}',
    b'{"entry":[]', b"", b"null", b'[{"entry":[]}]', b'"{\\"entry\\":[]}"', b'{"entry":[1e400]}',
    b'{"entry":[-0]}', b'{"entry":[], "entry":{}}', b'{"entry":{}, "entry":[]}', b'{"entry":["\\ud800"]}',
    b'{"entry":["\\udc00\\ud800"]}', b'{"entry":["\\u0000"]}', b'\xef\xbb\xbf{"entry":[]}',
    b'\x0c{"entry":[]}', b'{"entry":[]}\xc2\xa0', b'{"entry":[NaN]}', b'{"entry":[-Infinity]}',
    b'{"entry":["\xed\xa0\x80"]}', b'{"entry":["\xc0\xaf"]}', b'{"entry":["\xf4\x90\x80\x80"]}'])
INVALID_UTF8 = st.sampled_from([b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
                                b"\xf8\x88\x80\x80\x80"])
SCALAR_POOL = [None, True, False, 0, -1, 1.5, -0.0, 1e308, 5e-324, 2**64, -(2**63), "", "page", "instagram",
               "entry", "\ud800", "\udfff\ud800", "é", "\u2028\u2029", "\x00\x1f", "\\", '"', "\U0001f600"]
TEXT_RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0x7FF), (0x800, 0xFFFF), (0xD800, 0xDFFF),  # surrogates
               (0x10000, 0x10FFFF)]


def _random_text(rnd) -> str:
    return "".join(chr(rnd.randint(*rnd.choice(TEXT_RANGES))) for _ in range(rnd.randint(0, 8)))


def _random_json(rnd, budget: int):
    """A JSON value from a seeded Random: far cheaper to draw than st.recursive, for the bulk."""
    roll = rnd.random()
    if budget <= 0 or roll < 0.45:
        return rnd.choice(SCALAR_POOL) if rnd.random() < 0.5 else _random_text(rnd)
    if roll < 0.75:
        return [_random_json(rnd, budget - 1) for _ in range(rnd.randint(0, 3))]
    return {_random_text(rnd): _random_json(rnd, budget - 1) for _ in range(rnd.randint(0, 3))}


def _serialize(value, style: tuple[dict, bytes, bytes]) -> bytes:
    """`value` as JSON text in one of json.dumps' styles (lone surrogates as raw, invalid UTF-8)."""
    options, before, after = style
    return before + json.dumps(value, **options).encode("utf-8", "surrogatepass") + after


@st.composite
def serialized(draw, values) -> bytes:
    return _serialize(draw(values), draw(STYLES))


@st.composite
def envelopes(draw) -> bytes:
    """An envelope with seeded random entries, serialized: one object, all in three draws."""
    seed, style, obj = draw(SEEDS), draw(STYLES), draw(OBJECTS)
    rnd = random.Random(seed)
    envelope = {"object": obj} if rnd.random() < 0.6 else {}
    envelope["entry"] = [_random_json(rnd, 5) for _ in range(rnd.randint(0, 3))]
    if rnd.random() < 0.3:
        envelope[rnd.choice(["time", "id", _random_text(rnd)])] = _random_json(rnd, 3)
    return _serialize(envelope, style)


DEEP_LEVELS = st.integers(55, 70) | st.integers(0, 140) | st.integers(900, 1300)
DEEP_MASK = st.integers(0, 2**140 - 1)
DEEP_INNER = st.sampled_from(["[]", "{}", "1", '"x"', "null"])


@st.composite
def deep(draw) -> bytes:
    """An envelope whose entry nests `levels` deep, around MAX_DEPTH and far beyond."""
    levels = draw(DEEP_LEVELS)
    mask = draw(DEEP_MASK) if levels < 200 else 0  # which levels are objects rather than lists
    kinds = [not mask >> level & 1 for level in range(levels)]
    head = "".join("[" if is_list else '{"k":' for is_list in kinds)
    tail = "".join("]" if is_list else "}" for is_list in reversed(kinds))
    return ('{"object":"page","entry":[' + head + draw(DEEP_INNER) + tail + "]}").encode()


SIZES = st.integers(LIMIT - 3, LIMIT + 3) | st.integers(0, 3 * LIMIT)
PADDINGS = st.sampled_from(["spaces", "string", "multibyte"])


@st.composite
def sized(draw) -> bytes:
    """Bodies near and over the limit (padding is generated, not drawn byte by byte)."""
    target, how = draw(SIZES), draw(PADDINGS)
    if how == "spaces":
        base = draw(FIXTURES_ST)
        return base + b" " * max(0, target - len(base))
    head, end = b'{"object":"page","entry":[],"pad":"', b'"}'
    unit = "x" if how == "string" else "é"
    count = max(0, target - len(head) - len(end)) // len(unit.encode())
    return head + (unit * count).encode() + end


CODECS = st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig"])
MUTATIONS = st.sampled_from(["insert", "replace", "delete", "truncate", "encode"])
INSERTS = INVALID_UTF8 | st.binary(min_size=1, max_size=3)


@st.composite
def mutated(draw) -> bytes:
    """A real delivery with a byte inserted, replaced, deleted, cut off, or in another encoding."""
    body, how = draw(FIXTURES_ST), draw(MUTATIONS)
    at = draw(OFFSET) % (len(body) + 1)
    if how == "insert":
        return body[:at] + draw(INSERTS) + body[at:]
    if how == "replace":
        return body[:at] + bytes([draw(BYTE)]) + body[at + 1:]
    if how == "delete":
        return body[:at] + body[at + 1:]
    if how == "truncate":
        return body[:at]
    return json.dumps(json.loads(body), ensure_ascii=draw(st.booleans())).encode(draw(CODECS), "replace")


ENVELOPES = envelopes()
# hypothesis' own JSON values (shrinkable, but slow to draw), bare and as the entries of an envelope
NATIVE = serialized(JSON | st.fixed_dictionaries({"entry": st.lists(JSON, max_size=3)},
                                                 optional={"object": OBJECTS}))
BODIES = weighted((3, ENVELOPES), (1, FIXTURES_ST), (1, NATIVE), (1, deep()), (1, sized()),
                  (1, st.binary(max_size=300)), (1, mutated()), (1, NEAR_JSON))

# --------------------------------------------------------------------------- strategies: POST requests

CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "text/plain", "", "application/octet-stream",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "garbage;;;=\x7f"]
LATIN1 = st.text(st.characters(max_codepoint=0xFF), max_size=40)
EXTRA_HEADERS = st.sampled_from([
    {}, {}, {}, {"Content-Encoding": "gzip"}, {"X-Hub-Signature": "sha1=0000"}, {"Expect": "100-continue"},
    {"Connection": "close, Upgrade"}, {"X-Forwarded-For": "\r\n\x00\xff"}, {"Accept": "*/*"}]) | st.builds(
    lambda name, value: {name: value}, st.sampled_from(["X-Odd", "X-Hub-Signature", "Content-Encoding"]),
    LATIN1)
STATIC_QUERIES = ["", "", "hub.mode=subscribe", "x=%FF&y", "a=1&a=2&&=", "%zz=%", "hub.challenge=1"]
ERRORS = st.sampled_from([
    InvalidChunkSize(b"zz"), ChunkMissingTerminator(b"xx"), NoMoreData(b""), TimeoutError("timed out"),
    ConnectionResetError(104, "reset"), OSError("broken"), ValueError("I/O operation on closed file")])
FRAMINGS = ["length"] * 6 + ["chunked"] * 3 + [
    "length-short", "length-long", "length-bogus", "length-spaced", "none", "te-unframed",
    "chunked-with-length", "server-framed", "server-framed-cut", "broken"]
CHUNKED = st.sampled_from(["chunked", "chunked", "gzip, chunked", "Chunked", " chunked "])
BOGUS_LENGTHS = st.sampled_from(["abc", "", "-1", "+5", "1_0", "0x10", "1e3", "5 5", "\t"])
MAYBE_LENGTH = st.sampled_from([None, "length"])
ANY_LENGTH = st.integers(0, 3 * LIMIT)
SIG_FORMS = ["canonical"] * 12 + ["upper-hex", "mixed-hex", *LENIENT_FORMS, *INVALID_FORMS]
SIG_SECRETS = [*SECRETS] * 3 + ["wrong-secret", "", SECRET.upper(), SECRETS[1] + " "]
SIG_TARGETS = ["read"] * 8 + ["sent", "other"]
# Independent choices drawn as one (each draw costs hypothesis time): (framing, content type, query)
# and (signature form, secret, signed bytes).
SHAPES = st.sampled_from(list(itertools.product(FRAMINGS, CONTENT_TYPES, STATIC_QUERIES)))
SIGNATURES = st.sampled_from([SigSpec(*combo)
                              for combo in itertools.product(SIG_FORMS, SIG_SECRETS, SIG_TARGETS)])


def frame(draw, req: Req, framing: str) -> None:
    """Set the framing of `req`: Content-Length, Transfer-Encoding, and what the server did."""
    size = len(req.body)
    if framing == "length":
        req.content_length = str(size)
    elif framing == "length-short":
        req.content_length = str(draw(OFFSET) % max(size, 1))
    elif framing == "length-long":
        req.content_length = str(size + 1 + draw(OFFSET))
    elif framing == "length-bogus":  # counts as 0: no body
        req.content_length = draw(BOGUS_LENGTHS)
    elif framing == "length-spaced":
        req.content_length = f" {size}\t"
    elif framing == "none":  # neither Content-Length nor chunked: no body
        pass
    elif framing == "te-unframed":  # chunked, but the server passed the raw stream on: no body
        req.headers["Transfer-Encoding"] = draw(CHUNKED)
        req.content_length = str(size) if draw(MAYBE_LENGTH) else None
    elif framing == "chunked":  # the server dechunked it
        req.headers["Transfer-Encoding"] = draw(CHUNKED)
        req.terminated = True
    elif framing == "chunked-with-length":  # Content-Length does not count next to chunked
        req.headers["Transfer-Encoding"] = draw(CHUNKED)
        req.content_length = str(draw(ANY_LENGTH))
        req.terminated = True
    elif framing == "server-framed":  # gunicorn: input_terminated always, its Body stops at Content-Length
        req.content_length = str(size)
        req.terminated = True
    elif framing == "server-framed-cut":  # the client closed before Content-Length bytes came
        req.content_length = str(size + 1 + draw(OFFSET))
        req.terminated = True
    elif framing == "broken":  # a bad chunk size, a reset, a read timeout
        req.broken = draw(ERRORS)
        req.terminated = True
        if draw(st.booleans()):
            req.headers["Transfer-Encoding"] = "chunked"
        else:
            req.content_length = str(size)
    else:
        raise AssertionError(framing)


@st.composite
def posts(draw) -> tuple[Req, Expect]:
    """A POST /webhook with any body, framing and signature, and what it must get."""
    framing, content_type, query = draw(SHAPES)
    req = Req(body=draw(BODIES), query=query)
    if content_type is not None:
        req.headers["Content-Type"] = content_type
    req.headers.update(draw(EXTRA_HEADERS))
    frame(draw, req, framing)
    spec = draw(SIGNATURES)
    state, read = read_by_edge(req)
    signed = {"read": read if state == "read" and read is not None else req.body, "sent": req.body,
              "other": req.body + b"\n"}[spec.target]
    header = signature_header(spec, signed, draw)
    if header is not None:
        req.headers[SIG] = header
    return req, expect_post(req, spec, signed if header is not None else None)


# --------------------------------------------------------------------------- strategies: request lines

QUERY_KEYS = st.sampled_from([b"hub.mode", b"hub.verify_token", b"hub.challenge"] * 3
                             + [b"hub.mode ", b"HUB.MODE", b"hub_mode", b"hub", b"", b"x"]
                             ) | st.binary(max_size=6)
QUERY_VALUES = st.sampled_from([
    b"subscribe", VERIFY.encode(), b"1158201444", b"", b"subscribe ", b"SUBSCRIBE", VERIFY.encode()[:-1],
    VERIFY.upper().encode(), "✓".encode(), b"\xff\xfe", b"%41", b"\x00\r\n",
    VERIFY.encode("latin-1", "replace"),
]) | st.binary(max_size=12)
QUERY_PAIRS = st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=3)
TOKENS = st.sampled_from([VERIFY.encode()] * 3) | QUERY_VALUES
QUERY_STYLES = st.sampled_from(list(itertools.product(["raw", "pct", "lower", "plus", "raw-utf8"],
                                                       ["", "", "&", "&&"])))  # (encoding, stray separator)


def _encode(data: bytes, style: str) -> str:
    """`data` in a query string, the way some client would write it."""
    if style == "raw" and re.fullmatch(rb"[A-Za-z0-9._~-]*", data):
        return data.decode("ascii")
    if style == "raw-utf8" and not re.search(rb"[&=+%#\x00-\x20\x7f]", data):
        try:  # unencoded UTF-8 as lenient servers pass it on (latin-1 text, PEP 3333)
            return data.decode("utf-8").encode("utf-8").decode("latin-1")
        except UnicodeDecodeError:
            pass  # raw bytes that are not UTF-8: see the test at the end; gunicorn refuses them
    if style == "plus":
        return "".join("+" if b == 0x20 else chr(b) if b < 0x80 and chr(b).isalnum() else f"%{b:02X}"
                       for b in data)
    if style == "lower":
        return "".join(f"%{b:02x}" for b in data)
    return "".join(f"%{b:02X}" for b in data)


@st.composite
def queries(draw) -> tuple[str, list[tuple[bytes, bytes]]]:
    """A query string and the (key, value) pairs it decodes to, in order."""
    pairs = draw(QUERY_PAIRS)
    if draw(st.booleans()):  # the usual handshake, maybe disturbed by the pairs before it
        pairs += [(b"hub.mode", b"subscribe"), (b"hub.verify_token", draw(TOKENS)),
                  (b"hub.challenge", draw(QUERY_VALUES))]
    style, stray = draw(QUERY_STYLES)
    segments, decoded = [], []
    for key, value in pairs:
        if value == b"" and style == "plus":
            segment = _encode(key, style)  # "key" alone means an empty value
        else:
            segment = _encode(key, style) + "=" + _encode(value, style)
        if segment:  # an empty segment is no pair at all
            segments.append(segment)
            decoded.append((key, value))
    # stray separators are no pairs either
    return (stray + stray.join(segments) if stray else "&".join(segments)), decoded


QUERIES = queries()
COMMON_METHODS = st.sampled_from(["GET"] * 5 + ["HEAD", "POST", "POST", "POST", "PUT", "PATCH", "DELETE",
                                  "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get", "Post", "FOO"])
METHODS = weighted((4, COMMON_METHODS),
                   (1, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10)))
# The path as the server passes it on (percent-decoded): mostly the endpoints, odd ones too.
ENDPOINTS = st.sampled_from([b"/webhook"] * 4 + [b"/healthz", b"//webhook", b"webhook"])
ODD_PATHS = st.sampled_from([
    b"/webhook/", b"/webhook//", b"/WEBHOOK", b"/webhook\x00", b"/web\nhook", b"/webhook\r\nX-Injected: 1",
    b"/webhook%", b"/webhook/..", b"/./webhook", b"/webhook;x", b"/webhook\xff", b"/healthz/", b"", b"/",
    b"*", b"/\xc3\xa9", b"/webhook?x", b"/webhook#x", b"/webhook\x7f", b"/web//hook", b"///healthz",
    b"/healthz\t"])
PATHS = weighted(
    (6, ENDPOINTS), (1, ODD_PATHS),
    (1, st.text(alphabet="abehkoHW0789%%%%/._~-", max_size=16).map(lambda t: unquote_to_bytes("/" + t))),
    (1, st.binary(max_size=16).map(lambda raw: b"/" + raw)),
    (1, st.binary(max_size=4).map(lambda raw: b"/webhook" + raw)))
LIGHT_POSTS = st.sampled_from(list(itertools.product(  # (body, signature form)
    [b'{"object":"page","entry":[]}', FIXTURE_BODIES[0], b"", b"not json", b'{"entry":{}}'],
    ["canonical", "canonical", "absent", "flipped"])))


@st.composite
def requests(draw) -> tuple[Req, Expect]:
    """Any method, path and query string; small bodies, signed or not."""
    method, path, (query, pairs), (body, form) = draw(METHODS), draw(PATHS), draw(QUERIES), draw(LIGHT_POSTS)
    req = Req(method=method, path=path, query=query, body=body, content_length=str(len(body)),
              headers={"Content-Type": "application/json"})
    spec = SigSpec(form, SECRETS[1], "read")
    header = signature_header(spec, body)
    if header is not None:
        req.headers[SIG] = header
    decoded = path.decode("utf-8", "replace")
    name = "/" + decoded.lstrip("/") if decoded else ""  # werkzeug routes "//webhook" as "/webhook"
    verb = method.upper()  # werkzeug's Request.method
    if name == "/webhook":
        if verb in ("GET", "HEAD"):
            expect = expect_handshake(pairs)
        elif verb == "POST":
            expect = expect_post(req, spec, body if header is not None else None)
        else:
            expect = Expect({200} if verb == "OPTIONS" else {405})
    elif name == "/healthz":
        expect = Expect({200} if verb in ("GET", "HEAD", "OPTIONS") else {405}, health=verb == "GET")
    elif re.sub("/{2,}", "/", name) != name:
        expect = Expect(None)  # werkzeug merges slashes: may reach an endpoint, or redirect to it
    else:
        expect = Expect({404})
    return req, expect


# --------------------------------------------------------------------------- the properties

@settings(FUZZ, max_examples=EXAMPLES["test_any_post_to_the_webhook"])
@given(case=posts())
def test_any_post_to_the_webhook(app, sent, case):
    """Bodies, framings, content types and signatures of every kind against POST /webhook."""
    req, expect = case
    answer = send(app, req)
    check(answer, req, expect)
    sent["requests"] += 1
    sent["rows"] += len(answer.new_rows)


@settings(FUZZ, max_examples=EXAMPLES["test_signed_envelopes_are_recorded_exactly"])
@given(envelope=FIXTURES_ST | ENVELOPES | deep() | sized(), secret=st.sampled_from(SECRETS),
       form=st.sampled_from(VALID_FORMS), framing=st.sampled_from(["length", "chunked", "server-framed"]),
       data=st.data())
def test_signed_envelopes_are_recorded_exactly(app, sent, envelope, secret, form, framing, data):
    """Validly signed bodies under either secret: an envelope within limits is 200 and recorded as sent."""
    req = Req(body=envelope, headers={"Content-Type": "application/json"})
    frame(data.draw, req, framing)
    spec = SigSpec(form, secret, "read")
    header = signature_header(spec, envelope)
    assert header is not None  # every form drawn here is a signature
    req.headers[SIG] = header
    answer = send(app, req)
    check(answer, req, expect_post(req, spec, envelope))
    if len(envelope) > LIMIT:
        assert answer.status == 413 and answer.new_rows == []
    elif classify(envelope) == "envelope":
        assert answer.status == 200 and answer.new_rows == [envelope]
    else:
        assert answer.status == 400 and answer.new_rows == []
    sent["requests"] += 1
    sent["rows"] += len(answer.new_rows)


@settings(FUZZ, max_examples=EXAMPLES["test_any_method_path_and_query"])
@given(case=requests())
def test_any_method_path_and_query(app, sent, case):
    """Request lines of every kind: the handshake, health, unknown routes and methods."""
    req, expect = case
    answer = send(app, req)
    check(answer, req, expect)
    sent["requests"] += 1
    sent["rows"] += len(answer.new_rows)
    if expect.health:  # the counts are the inbox's: everything recorded so far waits (no relay here)
        assert json.loads(answer.data) == {"status": "ok", "unpublished": sent["rows"], "failed": 0}


# --------------------------------------------------------------------------- fixed cases

def _signed(body: bytes, *, chunked: bool = False, secret: str = SECRET) -> Req:
    req = Req(body=body, headers={"Content-Type": "application/json",
                                  SIG: "sha256=" + _hmac_hex(secret, body)})
    if chunked:
        req.headers["Transfer-Encoding"] = "chunked"
        req.terminated = True
    else:
        req.content_length = str(len(body))
    return req


def _padded(size: int) -> bytes:
    body = b'{"object":"page","entry":[]}'
    body += b" " * (size - len(body))
    assert len(body) == size
    return body


def _nested(depth: int) -> bytes:
    """An envelope nesting exactly `depth` levels (the envelope object is level 1)."""
    body = b'{"entry":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    assert _depth(body.decode()) == depth
    return body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("body, status", [
    (_padded(LIMIT), 200), (_padded(LIMIT + 1), 413),
    (_nested(MAX_DEPTH), 200), (_nested(MAX_DEPTH + 1), 400),
], ids=["limit", "limit+1", "depth-64", "depth-65"])
def test_the_limits_exactly(app, body, status, chunked):
    req = _signed(body, chunked=chunked, secret=SECRETS[1])
    answer = send(app, req)
    check(answer, req, expect_post(req, SigSpec("canonical", SECRETS[1], "read"), body))
    assert answer.status == status
    assert answer.new_rows == ([body] if status == 200 else [])


def test_the_handshake_with_a_token_that_needs_encoding(app):
    token = _encode(VERIFY.encode(), "plus")
    query = f"hub.mode=subscribe&hub.verify_token={token}&hub.challenge=%E2%9C%93+1"
    answer = send(app, Req(method="GET", query=query))
    assert answer.status == 200 and answer.data == "✓ 1".encode()
    wrong = send(app, Req(method="GET", query=query.replace("token=v", "token=w")))
    assert wrong.status == 403 and wrong.new_rows == []


# ------------------------------------------------------------ edge cases the fuzz found (now fixed)

def test_a_raw_non_utf8_byte_in_the_handshake_query_is_not_a_5xx(app):
    # gunicorn 27 refuses such a request line itself (400); servers that pass raw bytes on do not.
    answer = send(app, Req(method="GET", query="hub.mode=\xff"))  # the byte 0xFF, as PEP 3333 text
    assert answer.status in (400, 403)


@pytest.mark.parametrize("server_framed", [False, True], ids=["werkzeug-limited", "gunicorn-like"])
def test_a_body_cut_short_of_its_content_length_is_bad_framing(app, server_framed):
    body = b'{"object":"page","entry":[]}'
    req = _signed(body)
    req.content_length = str(len(body) + 10)
    req.terminated = server_framed
    answer = send(app, req)
    assert (answer.status, answer.new_rows) == (400, [])


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(app, constant):
    body = b'{"object":"page","entry":[' + constant + b"]}"
    answer = send(app, _signed(body))
    assert (answer.status, answer.new_rows) == (400, [])
