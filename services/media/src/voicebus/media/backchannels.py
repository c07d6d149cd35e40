"""Backchannels: what a listener says to show they follow ("mhm", "okay", "right").

Pure. Said over the agent, a backchannel never interrupts it and is no turn of
the conversation. Text is compared after normalization: lower case, noise
annotations an STT engine adds ("(coughs)", "[BLANK_AUDIO]") removed, hyphens
as spaces, punctuation dropped, runs of one letter collapsed ("mmm-hmmm" and
"mm-hmm" both become "m hm"), so one entry covers the ways engines spell it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

_BUILT_IN: Final[Mapping[str, tuple[str, ...]]] = {
    "en": (
        "mhm",
        "mm hmm",
        "uh huh",
        "hmm",
        "hm",
        "mm",
        "uh",
        "um",
        "ah",
        "oh",
        "okay",
        "ok",
        "right",
        "yeah",
        "yes",
        "yep",
        "yup",
        "sure",
        "i see",
        "got it",
        "alright",
        "all right",
        "cool",
        "great",
        "nice",
        "really",
        "wow",
        "exactly",
        "true",
        "indeed",
        "of course",
    ),
    "es": ("mhm", "ajá", "aja", "sí", "si", "vale", "claro", "ya", "bueno", "entiendo", "okay"),
    "fr": ("mhm", "oui", "ouais", "d'accord", "ok", "okay", "ah bon", "je vois", "voilà", "bien"),
    "de": ("mhm", "ja", "genau", "okay", "ok", "richtig", "stimmt", "ach so", "klar", "gut"),
    "pt": ("mhm", "sim", "tá", "certo", "claro", "entendi", "ok", "okay", "uhum"),
    "hi": (
        "mhm",
        "haan",
        "han",
        "haa",
        "hmm",
        "accha",
        "acha",
        "achha",
        "theek hai",
        "thik hai",
        "ji",
        "ji haan",
        "okay",
        "ok",
        "हाँ",
        "हां",
        "हम्म",
        "अच्छा",
        "ठीक है",
        "जी",
        "जी हाँ",
    ),
    "ta": ("mhm", "aamaa", "aama", "sari", "seri", "hmm", "okay", "ok", "ஆமா", "சரி", "ம்ம்"),
}
"""Built-in backchannels per language (ISO 639-1)."""

_ANNOTATION: Final = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|♪")
_PUNCT: Final = re.compile(r"[^\w\s']+")
_REPEAT: Final = re.compile(r"(\w)\1+")


def normalize(text: str) -> list[str]:
    """The words of ``text`` as compared with backchannels."""
    text = _ANNOTATION.sub(" ", text.lower()).replace("-", " ")
    text = _PUNCT.sub(" ", text)
    return [_REPEAT.sub(r"\1", word.strip("'")) for word in text.split() if word.strip("'")]


class Backchannels:
    """A set of backchannel phrases, each one or more words.

    Args:
        phrases: the phrases (any spelling; normalized here).
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases = {tuple(words) for words in map(normalize, phrases) if words}
        self._longest = max((len(p) for p in self._phrases), default=0)

    @classmethod
    def for_language(cls, language: str, custom: Iterable[str] | None = None) -> Backchannels:
        """The agent's own list when it has one, else the built-in one for its language.

        Args:
            language: BCP 47 tag ("en-US" uses "en"); unknown languages get English.
            custom: the agent's ``turn.backchannels``, or None.
        """
        if custom is not None:
            return cls(custom)
        base = language.split("-")[0].lower()
        return cls(_BUILT_IN.get(base, _BUILT_IN["en"]))

    def content_words(self, text: str) -> list[str]:
        """The words of ``text`` that are not part of a backchannel phrase."""
        words = normalize(text)
        rest: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                if tuple(words[i : i + size]) in self._phrases:
                    i += size
                    break
            else:
                rest.append(words[i])
                i += 1
        return rest

    def is_backchannel(self, text: str) -> bool:
        """Words, and all of them backchannels."""
        return bool(normalize(text)) and not self.content_words(text)
