"""The narrow channel's codec: built-in values only, rebuilt fresh on the trusted side.

encode() runs in the program's process (the program could replace it: nothing relies on
it), decode() runs in the trusted test process and is the only way a value from the
program reaches test code. JSON carries None, bool, int, float and str natively; every
JSON object is a one-key tag for another built-in type:

  {"tuple": [..]} {"set": [..]} {"frozenset": [..]} {"dict": [[k, v], ..]}
  {"bytes": "latin-1 text"} {"bytearray": ".."} {"complex": [re, im]} {"int": "-0x1f.."}
  {"range": [start, stop, step]} {"iter": [..]} (a generator or map: an iterator again)
  {"Counter" | "OrderedDict" | "defaultdict": [[k, v], ..]} {"deque": [..]}
  (rebuilt from this side's own collections: a patched class in the program is not)
  {"type": "int"} (a built-in type itself, as in `remove_datatype(t, int)`)
  {"handle": n} (any other object: it stays in the program, the test gets an opaque
  reference it can only hand back, call, or read attributes of through the channel)

decode() checks every type exactly, bounds depth, size and integer length, and raises
ValueError for anything else: the test then fails; nothing the program sends is trusted.
"""

import collections
import json
import re

MAX_DEPTH = 200
MAX_ITEMS = 2_000_000
MAX_INT_DIGITS = 1_000_000  # hex digits: 4 million bits
MAX_ITER = 1_000_000
INT_RE = re.compile(r"-?0x[0-9a-f]+\Z")
TAGS = ("tuple", "set", "frozenset", "dict", "bytes", "bytearray", "complex", "int",
        "range", "iter", "handle", "Counter", "OrderedDict", "defaultdict", "deque", "type")
TYPES = {t.__name__: t for t in (int, float, complex, str, bytes, bytearray, bool, list, tuple,
                                  dict, set, frozenset, type(None), object)}
MAPPINGS = (collections.Counter, collections.OrderedDict, collections.defaultdict)


class Unencodable(TypeError):
    pass


def encode(value, handles=None, depth=0):
    """A JSON-ready form of a built-in value; other objects become handles (or fail)."""
    if depth > MAX_DEPTH:
        raise Unencodable("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(1 << 53) < value < (1 << 53) else {"int": _int_text(value)}
    if t is float:
        return value
    if t is list:
        return [encode(v, handles, depth + 1) for v in value]
    if t in (tuple, set, frozenset):
        return {t.__name__: [encode(v, handles, depth + 1) for v in value]}
    if t is dict or t in MAPPINGS:
        return {t.__name__: [[encode(k, handles, depth + 1), encode(v, handles, depth + 1)]
                             for k, v in value.items()]}
    if t is collections.deque:
        return {"deque": [encode(v, handles, depth + 1) for v in value]}
    if t in (bytes, bytearray):
        return {t.__name__: value.decode("latin-1")}
    if t is complex:
        return {"complex": [value.real, value.imag]}
    if t is range:
        return {"range": [value.start, value.stop, value.step]}
    if t is type and TYPES.get(getattr(value, "__name__", "")) is value:
        return {"type": getattr(value, "__name__", "")}
    if t.__name__ in ("generator", "map", "filter", "zip", "enumerate", "reversed") \
            and t.__module__ == "builtins":
        items: list = []
        for v in value:
            if len(items) >= MAX_ITER:
                raise Unencodable("iterator too long")
            items.append(encode(v, handles, depth + 1))
        return {"iter": items}
    if handles is None:
        raise Unencodable("a %s is not a built-in value" % t.__name__)
    return {"handle": handles(value)}


def _int_text(value):
    """Hexadecimal: linear to parse back, whatever the size (decimal is quadratic)."""
    return hex(value)


def dumps(value, handles=None):
    return json.dumps(encode(value, handles), separators=(",", ":"))


class Decoder:
    """Rebuilds built-in values from untrusted JSON; `handle(n)` makes an opaque reference."""

    def __init__(self, handle=None):
        self.handle = handle
        self.items = 0

    def loads(self, text):
        try:
            raw = json.loads(text, parse_int=self._int, parse_float=float)
        except RecursionError:
            raise ValueError("value nested too deeply") from None
        return self.value(raw, 0)

    def _int(self, digits):
        if len(digits) > 20:  # big integers travel as {"int": ...}
            raise ValueError("integer literal too long")
        return int(digits)

    def value(self, raw, depth):
        """A fresh built-in value from parsed JSON (`depth` 0 starts a new budget)."""
        if depth == 0:
            self.items = 0
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise ValueError("value too deep or too large")
        t = type(raw)
        if raw is None or t in (bool, str, int, float):
            return raw
        if t is list:
            return [self.value(v, depth + 1) for v in raw]
        if t is not dict or len(raw) != 1:
            raise ValueError("malformed value")
        (tag, body), = raw.items()
        if tag not in TAGS:
            raise ValueError("unknown value tag")
        return getattr(self, "tag_" + tag)(body, depth + 1)

    def _list(self, body, depth):
        if type(body) is not list:
            raise ValueError("malformed value")
        return [self.value(v, depth) for v in body]

    def tag_tuple(self, body, depth):
        return tuple(self._list(body, depth))

    def tag_set(self, body, depth):
        return set(self._list(body, depth))

    def tag_frozenset(self, body, depth):
        return frozenset(self._list(body, depth))

    def tag_iter(self, body, depth):
        return iter(self._list(body, depth))

    def tag_dict(self, body, depth):
        pairs = self._list(body, depth)
        if any(type(p) is not list or len(p) != 2 for p in pairs):
            raise ValueError("malformed dict")
        return {k: v for k, v in pairs}

    def tag_Counter(self, body, depth):
        return collections.Counter(self.tag_dict(body, depth))

    def tag_OrderedDict(self, body, depth):
        return collections.OrderedDict(self.tag_dict(body, depth))

    def tag_defaultdict(self, body, depth):
        return collections.defaultdict(None, self.tag_dict(body, depth))

    def tag_deque(self, body, depth):
        return collections.deque(self._list(body, depth))

    def tag_bytes(self, body, depth):
        if type(body) is not str:
            raise ValueError("malformed bytes")
        return body.encode("latin-1")

    def tag_bytearray(self, body, depth):
        return bytearray(self.tag_bytes(body, depth))

    def tag_complex(self, body, depth):
        parts = self._list(body, depth)
        if len(parts) != 2 or any(type(p) not in (int, float) for p in parts):
            raise ValueError("malformed complex")
        return complex(parts[0], parts[1])

    def tag_int(self, body, depth):
        if type(body) is not str or len(body) > MAX_INT_DIGITS or not INT_RE.match(body):
            raise ValueError("malformed or oversized integer")
        return int(body, 16)

    def tag_range(self, body, depth):
        parts = self._list(body, depth)
        if len(parts) != 3 or any(type(p) is not int for p in parts) or parts[2] == 0:
            raise ValueError("malformed range")
        return range(*parts)

    def tag_type(self, body, depth):
        if type(body) is not str or body not in TYPES:
            raise ValueError("malformed type")
        return TYPES[body]

    def tag_handle(self, body, depth):
        if type(body) is not int or self.handle is None:
            raise ValueError("malformed handle")
        return self.handle(body)
