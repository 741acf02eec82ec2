"""Find personal data in transcripts and replace it with typed placeholders ("[CARD]", "[PHONE]").

How it works:

1. **One word stream per channel.** The words of all segments of a channel, in time order, make
   one sequence, so a card number Whisper splits over two segments ("45320151." / "Okay." /
   "12345670.") is still one number. Words Whisper glues together without a space (" 2" ".02"
   ".55") count as one token.
2. **Numbers, spoken or written.** Each token is read as digits when it can be: digit words
   ("four", "oh", "double five", "forty three", "eight hundred") or digits written with spaces,
   dashes, dots or commas ("4532-0151", "4,532"). Amounts, decimals and times ("$59.99", "10.30",
   "10:30") and ordinals ("14th") are not digits. Neighbouring numbers join into one run when
   only fillers stand between them ("uh", "okay", "go on", "dash").
3. **Classify each run**: 13-19 digits passing the Luhn check -> CARD; 9 digits read 3-2-4 or
   after "social security" -> NATIONAL_ID; a phone number's shape (North American 10 digits, 1 +
   10, UK 0 + 10, +44, any "+" number) or 7+ digits after a phone word ("phone", "call", "reach")
   -> PHONE; anything else of 6+ digits -> DIGITS. Shorter runs are ordinary numbers and stay.
   E-mail addresses (written, or spoken with "at" / "dot" / "underscore") and UK National
   Insurance numbers ("QQ 12 34 56 C") are found before the digits.
4. **Replace.** The words of a span become one placeholder word with the span's times, in every
   segment the span touches; segments keep their count, order and times. Each span is reported
   as a `Redaction`, whose times are widened into the silence on either side (by default up to
   4 s before and 1 s after, never over another word) because Whisper often times the start of a
   spoken digit string seconds late; a clip exporter can bleep those times.

docs/redaction.md lists what is caught and what is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import InvalidInputError
from .types import Segment, Word

__all__ = ["Redaction", "KINDS", "redact_segments", "redact_text"]

KINDS = ("CARD", "PHONE", "EMAIL", "NATIONAL_ID", "DIGITS")
MIN_DIGITS = 6  # a shorter run of digits is an ordinary number (an order number, a year)


@dataclass(frozen=True)
class Redaction:
    """One replaced span: the audio from `start` to `end` (seconds) on `channel` held `kind`."""

    start: float
    end: float
    kind: str  # one of KINDS
    channel: int = 0


# ---------------------------------------------------------------- vocabulary ---------------
_DIGIT = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_DIGIT.update({"oh": "0", "o": "0", "nought": "0"})
_WEAK = {"oh", "o"}  # digits only next to another number ("Oh, thanks" is not a zero)
_UNIT = {w for w, d in _DIGIT.items() if d != "0"}  # "forty" + "three"
_TEENS = {w: str(10 + i) for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: str(i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_REPEAT = {"double": 2, "triple": 3}
_FILLERS = {"uh", "um", "er", "erm", "ah", "eh", "hmm", "mm", "mhm", "dash", "hyphen", "okay", "ok",
            "yes", "yeah", "yep", "right", "sure", "go", "on", "ahead", "got", "it", "double", "triple"}
_MAX_FILLERS = 3
_PHONE_WORDS = {"phone", "mobile", "cell", "telephone", "landline", "call", "reach", "text", "dial", "ring",
                "number", "contact"}
_NOT_PHONE = {"order", "account", "card", "reference", "member", "tracking", "case", "ticket", "policy",
              "invoice", "confirmation", "customer", "serial", "model", "house", "room", "flat"}
_SSN_WORDS = {"social", "ssn"}
_MONEY = {"dollars", "dollar", "bucks", "pounds", "pound", "euros", "euro", "cents", "pence", "percent"}
_MONTHS = set("january february march april may june july august september october november december "
              "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_CONTEXT = 8  # words before a run searched for "phone" or "social security"
# e-mail: words that are never part of a spoken address ("I looked at example.com" is a website)
_NOT_LOCAL = set("i me my we us our you your he him his she her they them their it it's its is are was were "
                 "be been am the a an and or to for from of with on in by as so if that this that's what "
                 "email e-mail mail address yes no please sure okay ok um uh er thanks "
                 "look looked looking work worked working live lived living stay stayed staying shop "
                 "shopped buy bought order ordered sold find found visit visited check checked sign signed "
                 "log logged go went online website site page link available here there home up out".split())
_LOCAL_WORDS = 3  # a spoken local part without "dot"s: at most three words ("member score lee")
_CONNECT = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
_TLDS = set("com org net edu gov mil int info biz io co me app dev ai".split())
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._%+'-]*[a-z0-9])?")
_WRITTEN = re.compile(r"[+#(]*\d[\d().,\-]*")
_DECIMAL = re.compile(r"\d+\.\d+")  # 59.99, 10.30: an amount or a time, not digit groups
_ISO_DATE = re.compile(r"(?:19|20)\d\d-\d\d-\d\d")
_NI = re.compile(r"[A-Z]{2}\d{6}[A-Da-d]")
_PUNCT = ".,;:?!…"


@dataclass
class _Tok:
    first: int  # first and last word of the token in the stream
    last: int
    text: str

    @property
    def core(self) -> str:
        return self.text.strip().strip("\"'()[]" + _PUNCT)

    @property
    def low(self) -> str:
        return self.core.lower()

    @property
    def stop(self) -> bool:  # ends with punctuation: a pause, a new chunk of digits
        tail = self.text.rstrip().rstrip("\"')]")
        return bool(tail) and tail[-1] in _PUNCT


@dataclass
class _Num:
    a: int  # first and last token
    b: int
    digits: str
    chunks: Tuple[int, ...]  # digit groups as written ("123-45-6789": 3, 2, 4)
    spelled: bool = True  # read digit by digit: joins the neighbouring spelled digits in one chunk
    plus: bool = False


# ---------------------------------------------------------------- reading numbers ----------
def _written(core: str) -> Optional[Tuple[str, Tuple[int, ...], bool, bool]]:
    """Digits written as text: "4532-0151", "4,532", "(202)", "+44"; None for amounts and times."""
    if not _WRITTEN.fullmatch(core) or _DECIMAL.fullmatch(core) or _ISO_DATE.fullmatch(core):
        return None
    groups = re.findall(r"\d+", core)
    spelled = all(len(g) == 1 for g in groups)  # "1-2-3" is read digit by digit
    digits = "".join(groups)
    return digits, (len(digits),) if spelled else tuple(map(len, groups)), spelled, core.startswith("+")


def _spoken(low: str) -> Optional[str]:
    """Digits of a number word: "four", "oh", "fourteen", "forty", "twenty-seven", "four-five"."""
    parts = low.split("-")
    out = ""
    while parts:
        p = parts.pop(0)
        if p in _TENS:
            out += _TENS[p] + (_DIGIT[parts.pop(0)] if parts and parts[0] in _UNIT else "0")
        elif p in _DIGIT:
            out += _DIGIT[p]
        elif p in _TEENS:
            out += _TEENS[p]
        else:
            return None
    return out or None


def _numeric(t: _Tok) -> bool:
    return bool(_written(t.core) or _spoken(t.low) or t.low in _REPEAT or t.low in _TENS)


def _numbers(toks: List[_Tok], taken: List[bool]) -> List[_Num]:
    """Every number in the stream, in order; multi-word numbers ("double five") are one."""
    out: List[_Num] = []
    n = len(toks)
    i = 0
    while i < n:
        if taken[i]:
            i += 1
            continue
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < n and not taken[i + 1] else None
        w = _written(t.core)
        if w:
            out.append(_Num(i, i, *w))
        elif t.low in _REPEAT and nxt is not None and len(_spoken(nxt.low) or "") == 1:
            out.append(_Num(i, i + 1, _spoken(nxt.low) * _REPEAT[t.low], (_REPEAT[t.low],)))
            i += 1
        elif t.low in _TENS and nxt is not None and not t.stop and nxt.low in _UNIT:
            out.append(_Num(i, i + 1, _TENS[t.low] + _DIGIT[nxt.low], (2,)))
            i += 1
        elif t.low == "hundred" and out and out[-1].b == i - 1 and out[-1].spelled and not toks[i - 1].stop:
            last = out[-1]
            last.b, last.digits, last.chunks = i, last.digits + "00", (last.chunks[0] + 2,)
        else:
            d = _spoken(t.low)
            if d and (t.low not in _WEAK or (nxt is not None and _numeric(nxt))
                      or (i > 0 and not taken[i - 1] and not toks[i - 1].stop and _numeric(toks[i - 1]))):
                out.append(_Num(i, i, d, (len(d),)))
        i += 1
    return out


def _runs(nums: List[_Num], toks: List[_Tok]) -> List[List[_Num]]:
    """Numbers that follow each other with only a few fillers between them."""
    runs: List[List[_Num]] = []
    for num in nums:
        if runs and not num.plus:
            prev = runs[-1][-1]
            between = [toks[k].low for k in range(prev.b + 1, num.a)]
            if len(between) <= _MAX_FILLERS and all(w in _FILLERS for w in between):
                runs[-1].append(num)
                continue
        runs.append([num])
    return runs


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _chunks(run: List[_Num], toks: List[_Tok]) -> List[int]:
    """Lengths of the digit groups as read: spelled digits join until a pause (punctuation)."""
    out: List[int] = []
    for k, num in enumerate(run):
        prev = run[k - 1] if k else None
        if prev is not None and prev.spelled and num.spelled and prev.b + 1 == num.a and not toks[prev.b].stop:
            out[-1] += len(num.digits)
        else:
            out.extend(num.chunks)
    return out


def _kind(digits: str, chunks: List[int], plus: bool, before: List[str]) -> Optional[str]:
    n = len(digits)
    if 13 <= n <= 19 and _luhn(digits):
        return "CARD"
    if n == 9 and (chunks == [3, 2, 4] or _SSN_WORDS & set(before)):
        return "NATIONAL_ID"
    phone_words = [w for k, w in enumerate(before) if w in _PHONE_WORDS
                   and not (w == "number" and k and before[k - 1] in _NOT_PHONE)]
    if (plus and 8 <= n <= 15) or (n == 10 and digits[0] != "1") or (n == 11 and digits[0] in "01") \
            or (n == 12 and digits.startswith("44")) or (7 <= n <= 15 and phone_words):
        return "PHONE"
    return "DIGITS" if n >= MIN_DIGITS else None


def _classify(run: List[_Num], toks: List[_Tok]) -> List[Tuple[int, int, str]]:
    """Spans (first token, last token, kind) of one run of numbers."""
    digits = "".join(num.digits for num in run)
    a = run[0].a
    if a > 0 and toks[a - 1].low == "plus":  # "plus four four ..."
        a -= 1
    plus = run[0].plus or toks[a].low == "plus"
    before = [t.low for t in toks[max(0, a - _CONTEXT):a]]
    after = toks[run[-1].b + 1].low if run[-1].b + 1 < len(toks) else ""
    chunks = _chunks(run, toks)
    if after in _MONEY or (before and before[-1] in _MONTHS and re.fullmatch(r"\d{1,2}(19|20)\d\d", digits)) \
            or (len(digits) <= 12 and re.fullmatch(r"((19|20)\d\d)+", digits) and set(chunks) == {4}):
        return []  # "123,456 dollars", "June 14, 2024", "2023, 2024"
    card = _card_inside(run) if len(digits) > 19 else None
    if card:  # several numbers with nothing between them: the card, and what is around it
        i, j = card
        head = _classify(run[:i], toks) if i else []
        tail = _classify(run[j:], toks) if j < len(run) else []
        # a short rest beside the card (an expiry date, a CVV) goes with the card
        return head + [(head[-1][1] + 1 if head else a, tail[0][0] - 1 if tail else run[-1].b, "CARD")] + tail
    kind = _kind(digits, chunks, plus, before)
    return [(a, run[-1].b, kind)] if kind else []


def _card_inside(run: List[_Num]) -> Optional[Tuple[int, int]]:
    """The first, longest numbers run[i:j] that make a Luhn-valid card number."""
    cum = [0]
    for num in run:
        cum.append(cum[-1] + len(num.digits))
    digits = "".join(num.digits for num in run)
    for i in range(len(run)):
        for j in range(len(run), i, -1):
            if 13 <= cum[j] - cum[i] <= 19 and _luhn(digits[cum[i]:cum[j]]):
                return i, j
    return None


# ---------------------------------------------------------------- e-mail, NI numbers -------
def _local(t: _Tok) -> bool:
    """Whether a spoken word can be (part of) the name before "at" in an e-mail address."""
    return not t.stop and bool(_NAME.fullmatch(t.low)) and t.low not in _NOT_LOCAL and not _numeric(t)


def _email_at(toks: List[_Tok], k: int) -> Optional[Tuple[int, int]]:
    """The span of an e-mail address around token k ("at" or a word with "@"), if there is one."""
    t = toks[k]
    if "@" in t.low:
        left, _, right = t.low.partition("@")
    elif t.low == "at" and not t.stop:
        left = right = ""
    else:
        return None
    a = b = k
    if not left:
        if not k or not _local(toks[k - 1]):
            return None
        a = k - 1
    while a >= 2 and toks[a - 1].low in _CONNECT and not toks[a - 2].stop and _NAME.fullmatch(toks[a - 2].low):
        a -= 2  # "john dot smith", "sarah underscore lee"
    while not left and a > max(0, k - _LOCAL_WORDS) and _local(toks[a - 1]):
        a -= 1  # "john smith at example.com": Whisper heard the words of "johnsmith" apart
    labels = right.split(".") if right else []
    if not right:
        if k + 1 >= len(toks) or not _NAME.fullmatch(toks[k + 1].low):
            return None
        b = k + 1
        labels = toks[b].low.split(".")
    while not toks[b].stop and b + 2 < len(toks) and toks[b + 1].low == "dot" and _NAME.fullmatch(toks[b + 2].low):
        b += 2  # "example dot co dot uk"
        labels += toks[b].low.split(".")
    tld = labels[-1] if len(labels) > 1 else ""
    return (a, b) if tld.isalpha() and (tld in _TLDS or len(tld) == 2) else None


def _ni_at(toks: List[_Tok], k: int) -> Optional[int]:
    """Last token of a UK National Insurance number starting at token k ("QQ 12 34 56 C")."""
    text = ""
    for j in range(k, min(k + 9, len(toks))):
        t = toks[j]
        text += _spoken(t.low) or re.sub(r"[^A-Za-z0-9]", "", t.core)
        if len(text) >= 9:
            return j if _NI.fullmatch(text) else None
    return None


# ---------------------------------------------------------------- the word stream ----------
def _tokens(words: Sequence[Tuple[int, Word]]) -> List[_Tok]:
    """Whitespace-separated tokens; a word with no leading space joins the one before it."""
    toks: List[_Tok] = []
    for p, (seg, w) in enumerate(words):
        if toks and w.text[:1] not in ("", " ", "\t", "\n") and words[p - 1][0] == seg:
            toks[-1].last, toks[-1].text = p, toks[-1].text + w.text
        else:
            toks.append(_Tok(p, p, w.text))
    return toks


def _find(toks: List[_Tok]) -> List[Tuple[int, int, str]]:
    """Every span (first token, last token, kind) in a stream of tokens, in order."""
    taken = [False] * len(toks)
    spans: List[Tuple[int, int, str]] = []

    def claim(a: int, b: int, kind: str) -> None:
        spans.append((a, b, kind))
        taken[a:b + 1] = [True] * (b + 1 - a)

    for k in range(len(toks)):
        span = _email_at(toks, k)
        if span and not any(taken[span[0]:span[1] + 1]):
            claim(*span, "EMAIL")
    for k in range(len(toks)):
        end = None if taken[k] else _ni_at(toks, k)
        if end is not None and not any(taken[k:end + 1]):
            claim(k, end, "NATIONAL_ID")
    for run in _runs(_numbers(toks, taken), toks):
        for a, b, kind in _classify(run, toks):
            claim(a, b, kind)
    return sorted(spans)


def _wanted(kinds: Iterable[str]) -> set:
    wanted = {kinds.upper()} if isinstance(kinds, str) else {k.upper() for k in kinds}
    if wanted - set(KINDS):
        raise InvalidInputError(f"unknown redaction kind(s) {sorted(wanted - set(KINDS))}; "
                                f"choose from {list(KINDS)}")
    return wanted


def _placeholder(words: Sequence[Word], kind: str) -> Word:
    lead = words[0].text[:len(words[0].text) - len(words[0].text.lstrip())]
    trail = re.search(r"[" + re.escape(_PUNCT) + r"]*$", words[-1].text.rstrip()).group()
    return Word(words[0].start, words[-1].end, f"{lead}[{kind}]{trail}", min(w.probability for w in words))


def _pseudo_words(seg: Segment) -> Tuple[Word, ...]:
    """Words for a segment without word times: its tokens, timed evenly across the segment."""
    pieces = re.findall(r"\s*\S+", seg.text)
    total = sum(map(len, pieces)) or 1
    out, pos = [], 0
    for p in pieces:
        t0 = seg.start + (seg.end - seg.start) * pos / total
        pos += len(p)
        out.append(Word(t0, seg.start + (seg.end - seg.start) * pos / total, p if out else p.lstrip()))
    return tuple(out)


def redact_segments(segments: Sequence[Segment], kinds: Iterable[str] = KINDS,
                    pad: Tuple[float, float] = (4.0, 1.0)) -> Tuple[List[Segment], List[Redaction]]:
    """Replace personal data in `segments` with placeholder words (" [CARD]", " [PHONE]", ...).

    Returns new segments (same count, order and times; every other field kept) and the
    redactions in time order. The segments of each channel are read as one stream of words, so a
    number split over several segments is found whole; its placeholder replaces its words in
    every segment it touches. A redaction's times reach from its first word to its last, widened
    into the silence around it (never over another word) by up to ``pad`` = (before, after)
    seconds, so that bleeping them covers the spoken number even where Whisper timed its start
    late; ``pad=(0, 0)`` gives the words' own times.
    """
    wanted = _wanted(kinds)
    segments = list(segments)
    out = list(segments)
    found: List[Redaction] = []
    for channel in sorted({s.channel for s in segments}):
        order = sorted((i for i, s in enumerate(segments) if s.channel == channel), key=lambda i: segments[i].start)
        stream = [(i, w) for i in order for w in (segments[i].words or _pseudo_words(segments[i]))]
        toks = _tokens(stream)
        spans = [(toks[a].first, toks[b].last, kind) for a, b, kind in _find(toks) if kind in wanted]
        if not spans:
            continue
        at: Dict[int, int] = {p: n for n, (a, b, _) in enumerate(spans) for p in range(a, b + 1)}
        for n, (a, b, kind) in enumerate(spans):
            first, last = stream[a][1], stream[b][1]
            before = stream[a - 1][1].end if a else segments[stream[a][0]].start
            after = stream[b + 1][1].start if b + 1 < len(stream) else segments[stream[b][0]].end
            found.append(Redaction(min(first.start, max(before, first.start - pad[0])),
                                   max(last.end, min(after, last.end + pad[1])), kind, channel))
        for i, group in groupby(range(len(stream)), key=lambda q: stream[q][0]):
            positions = list(group)
            if not any(q in at for q in positions):
                continue
            words: List[Word] = []
            for span, piece in groupby(positions, key=at.get):
                piece_words = [stream[q][1] for q in piece]
                words += piece_words if span is None else [_placeholder(piece_words, spans[span][2])]
            text = "".join(w.text for w in words).strip()
            out[i] = replace(segments[i], text=text, words=tuple(words) if segments[i].words else ())
    found.sort(key=lambda r: (r.start, r.channel))
    return out, found


def redact_text(text: str, kinds: Iterable[str] = KINDS) -> str:
    """The same detection on plain text (an imported transcript, a query); whitespace is kept."""
    words = [Word(0.0, 0.0, m.group()) for m in re.finditer(r"\s*\S+", text)]
    if not words:
        return text
    segs, _ = redact_segments([Segment(0.0, 0.0, text, tuple(words))], kinds)
    return "".join(w.text for w in segs[0].words) + text[len(text.rstrip()):]
