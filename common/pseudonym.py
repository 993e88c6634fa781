"""Pseudonyms for personal ids at load: caller numbers and customer ids replaced by a keyed hash.

`source.pseudonymize` turns each listed canonical id column (caller_id, customer_id, optionally agent_id) into
`ps_` + the first 24 hex digits (96 bits) of HMAC-SHA256(key, value), the key coming from an environment variable.
The same value under the same key is always the same pseudonym, so redial chains, transfers and customer segments
work across nights exactly as on clear ids; without the key a pseudonym cannot be turned back or recomputed from a
guessed phone number. The same value gets the same pseudonym in every column (as the clear values would match).

Empty values stay empty (an unknown caller is not a person). The key is held only in this module's objects and is
never part of a message, a repr or the config.
"""

from __future__ import annotations

import csv
import hmac
import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from common.config_source import PseudonymizeConfig, SourceConfig
from common.errors import ConfigError

PREFIX = "ps_"
HEX_DIGITS = 24  # 96 bits: the chance of any two of 10 M distinct ids colliding is about 6e-16
MIN_KEY_CHARS = 32  # e.g. `openssl rand -hex 32` (64 characters); a short key could be guessed
_HEX = frozenset("0123456789abcdef")


def looks_pseudonymised(value: str) -> bool:
    """Whether a stored id has the form of a pseudonym (`ps_` and 24 hex digits)."""
    return len(value) == len(PREFIX) + HEX_DIGITS and value.startswith(PREFIX) and set(value[len(PREFIX):]) <= _HEX


class Pseudonymizer:
    """The keyed hash of one key, and which columns it replaces. The key itself is never shown."""

    def __init__(self, key: bytes, columns: Iterable[str] = ("caller_id", "customer_id"),
                 raw_columns: Mapping[str, Iterable[str]] | None = None) -> None:
        """`raw_columns`: export column -> its values kept as they are in a reject's raw text (source.missing_values
        of the canonical column it feeds, e.g. "0" for no customer)."""
        self._key = key
        self.columns = tuple(columns)
        self.raw_columns = {col: frozenset(keep) | {""} for col, keep in (raw_columns or {}).items()}

    def __repr__(self) -> str:
        return f"Pseudonymizer(columns={list(self.columns)}, key=***)"

    def __reduce__(self):  # never pickled: a spawned parser process builds its own from the environment
        raise TypeError("a Pseudonymizer is not pickled (it holds the key); build it with pseudonymizer(spec)")

    def one(self, value: str) -> str:
        """The pseudonym of one non-empty value."""
        return PREFIX + hmac.digest(self._key, value.encode("utf-8"), "sha256").hex()[:HEX_DIGITS]

    def values(self, values: np.ndarray) -> np.ndarray:
        """Object array of str with every non-empty value replaced by its pseudonym ('' stays '')."""
        if not len(values):
            return values
        codes, uniques = pd.factorize(values)  # ids repeat (a customer's calls): each distinct value hashed once
        mapped = np.array(["" if v == "" else self.one(v) for v in uniques.tolist()], dtype=object)
        return mapped[codes]

    def apply(self, text: dict[str, np.ndarray]) -> None:
        """Replace the pseudonymised canonical columns of mapped source text in place."""
        for name in self.columns:
            if name in text:
                text[name] = self.values(text[name])

    def _field(self, column: str, value: str) -> str:
        stripped = value.strip()
        return value if stripped in self.raw_columns[column] else self.one(stripped)

    def raw_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw export rows (a reject's text) with every field of a pseudonymised export column replaced by the
        pseudonym of its value; an empty field, or one listed under source.missing_values, is kept as it is."""
        hit = [c for c in frame.columns if c in self.raw_columns]
        if not hit or frame.empty:
            return frame
        out = frame.copy()
        for col in hit:
            out[col] = pd.array([self._field(col, str(v)) for v in out[col].tolist()], dtype="str")
        return out

    def raw_line(self, line: str | None, header: Iterable[str], delimiter: str) -> str | None:
        """A line that could not be read as a row (e.g. a last line cut off) with its pseudonymised fields
        replaced, each field placed by its position in the header."""
        if line is None:
            return None
        fields = next(csv.reader([line], delimiter=delimiter), [])
        fields = [self._field(col, v) if col in self.raw_columns else v for col, v in zip(header, fields)] + \
            fields[len(list(header)):]
        return delimiter.join(fields)


def _export_columns(spec: SourceConfig, columns: Iterable[str]) -> dict[str, str]:
    """Export column -> canonical column, for the canonical columns that are pseudonymised."""
    out: dict[str, str] = {}
    for name in columns:
        value = spec.columns.get(name)
        for col in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            out[col] = name
    return out


def pseudonymizer(spec: SourceConfig, environ: Mapping[str, str] | None = None) -> Pseudonymizer | None:
    """The source's Pseudonymizer (None when source.pseudonymize is off); ConfigError when the key is not usable."""
    cfg: PseudonymizeConfig = spec.pseudonymize
    if not cfg.enabled:
        return None
    environ = os.environ if environ is None else environ
    key = environ.get(cfg.key_env)
    what = f"source.pseudonymize.key_env: environment variable {cfg.key_env}"
    fix = (f"set it in the job's environment to a secret of at least {MIN_KEY_CHARS} characters (e.g. the output "
           "of `openssl rand -hex 32`) and keep it safe: another key gives every caller a new pseudonym")
    if not key:
        raise ConfigError(f"{what} is {'empty' if key == '' else 'not set'}; {fix}")
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{what} holds {len(key)} characters, fewer than {MIN_KEY_CHARS}; {fix}")
    raw = {col: spec.missing_values.get(name, []) for col, name in _export_columns(spec, cfg.columns).items()}
    raw.update({col: raw.get(col, []) for col in cfg.raw_columns})
    return Pseudonymizer(key.encode("utf-8"), cfg.columns, raw)
