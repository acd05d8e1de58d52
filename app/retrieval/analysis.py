"""Text analysis shared by indexing, querying and answer selection: accents folded, words
stemmed (Snowball English), common words dropped, and from questions the question words that
carry no content ("how long", "what is")."""

import re
import unicodedata
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# Words that carry no content in a question or a passage.
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing done during each else every few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom whose why will
    with would you your yours""".split()  # noqa: SIM905
)
# Question openers whose second word asks for a kind of answer rather than naming content:
# "how long is the warranty" asks about the warranty, not about length.
_QUESTION_OPENER = re.compile(
    r"\b(?:how|what)\s+(?:long|many|much|often|far|big|large|old|soon|kind|sort|type|types)\b"
)
# Words that make a question a request without naming its content.
_REQUEST_WORDS = frozenset(
    "please tell explain know want need way ways possible thing things get use using used".split()  # noqa: SIM905
)

_stemmer = Stemmer.Stemmer("english")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def fold(text: str) -> str:
    """Lower case without accents: "Café" and "cafe" meet."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    stem = str(_stemmer.stemWord(word))
    if stem.endswith("i") and len(stem) > 4:
        # Porter2 leaves "delivery" as "deliveri" but "delivers" as "deliv": stemming the word
        # without its final i brings the noun to the verb.
        return str(_stemmer.stemWord(stem[:-1]))
    return stem


def words(text: str) -> list[str]:
    """The folded words of a text, in order, stop words included."""
    return _WORD.findall(fold(text).replace("\u2019", "'"))


def terms(text: str) -> list[str]:
    """The stemmed content words of a passage, in order (repeats kept, for term frequency)."""
    return [_stem(word) for word in words(text) if word not in STOPWORDS]


def query_terms(question: str) -> list[str]:
    """The stemmed content words of a question, each once, in order."""
    text = _QUESTION_OPENER.sub(" ", fold(question))
    kept = [w for w in _WORD.findall(text) if w not in STOPWORDS and w not in _REQUEST_WORDS]
    return list(dict.fromkeys(_stem(word) for word in kept))


def split_sentences(text: str) -> list[str]:
    """The text's sentences (split after . ! or ? and a space), blank ones left out."""
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]
