"""Transcript text as the tests compare it: one normal form for what Whisper may write in
several ways, so that a test checks what was said, not how this CPU's decoder spelled it.

Whisper's int8 kernels (CTranslate2) differ between CPU families, and so does its text, a
little: "2 weeks" on one machine is "two weeks" on another, "cold-hearted" is "cold hearted",
"10:30" is "ten thirty". `words` maps all of these to the same tokens:

- lower case, apostrophes dropped ("It's" -> "its"), every other non-alphanumeric a space, so
  punctuation and hyphens ("cold-hearted" -> "cold hearted") do not count;
- number words become digits (speechsearch.lexical.spoken_numbers: "twenty four" -> "24"), then
  every digit is its own token, so "two weeks" == "2 weeks", "ten thirty" == "10:30" == "10.30",
  "four five three two" == "4532" and "twenty twenty four" == "2024";
- a few spellings Whisper alternates between are one ("mr" -> "mister", "ok" -> "okay").

`wer` is the word error rate of two texts in that form, and `says` whether a text holds a phrase.
docs/testing.md ("What depends on the CPU") says which outputs vary between machines.
"""

from __future__ import annotations

import re
from typing import List, Sequence, Union

from speechsearch.lexical import spoken_numbers

SAME = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay", "okey": "okay"}
_OTHER = re.compile(r"[^a-z0-9]+")


def words(text: str) -> List[str]:
    """`text` as normalised tokens (see the module docstring)."""
    t = text.lower().replace("’", "'").replace("'", "")
    t = _OTHER.sub(" ", t.replace("%", " percent "))
    t = spoken_numbers(t)
    t = re.sub(r"\d", lambda m: f" {m.group()} ", t)
    return [SAME.get(w, w) for w in t.split()]


def normalise(text: str) -> str:
    """`words(text)` joined by single spaces."""
    return " ".join(words(text))


def edits(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two token lists (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(reference: Union[str, Sequence[str]], hypothesis: Union[str, Sequence[str]]) -> float:
    """Word error rate of `hypothesis` against `reference`, both normalised."""
    ref = words(reference) if isinstance(reference, str) else list(reference)
    hyp = words(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
    return edits(ref, hyp) / max(1, len(ref))


def says(text: str, phrase: str) -> bool:
    """Whether `phrase`'s normalised words occur, in order and together, in `text`'s."""
    return f" {normalise(phrase)} " in f" {normalise(text)} "


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of the normalised texts, spaces left out: a word spelled another way
    ("ill-disposed" heard as "old-sposed", "cold hearted" as "coldhearted") costs the letters that
    differ, not whole words, so it varies less between machines than WER on a short clip."""
    ref, hyp = "".join(words(reference)), "".join(words(hypothesis))
    return edits(ref, hyp) / max(1, len(ref))
