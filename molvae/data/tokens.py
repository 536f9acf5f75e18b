"""Turn molecules into token sequences and token sequences into integer ids.

Three pieces, none of which knows about torch:

* `tokenize_smiles`: an atom-level regular-expression SMILES lexer whose tokens always
  concatenate back to the input string.
* `Tokenizer`: the representation a model is trained on (SMILES or SELFIES) together with
  the SELFIES semantic constraints, so that a saved model decodes the same way later.
* `Vocabulary`: token <-> id mapping with the special tokens at fixed ids, stored as JSON.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping, Sequence

import selfies as sf

from molvae.errors import CheckpointError, TokenizationError, UnknownTokenError, UsageError

__all__ = [
    "SPECIALS", "PAD_ID", "BOS_ID", "EOS_ID", "UNK_ID", "REPRESENTATIONS", "SELFIES_PRESETS",
    "tokenize_smiles", "applied_constraints", "Tokenizer", "Vocabulary",
]

SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
REPRESENTATIONS: tuple[str, ...] = ("smiles", "selfies")
SELFIES_PRESETS: tuple[str, ...] = ("default", "octet_rule", "hypervalent")

_VOCAB_FORMAT = "molvae-vocab"
_VOCAB_VERSION = 1

# Order matters: two-letter atoms before their one-letter prefixes, %nn before digits.
_SMILES_TOKEN = re.compile(
    r"\[[^\[\]]+\]"  # bracket atom: isotope, element, chirality (@, @@), H count, charge, class
    r"|Br|Cl"  # two-letter organic-subset atoms (must precede B and C)
    r"|[BCNOPSFI]"  # aliphatic organic subset
    r"|[bcnops]"  # aromatic organic subset
    r"|\*"  # wildcard atom
    r"|%\([0-9]+\)|%[0-9]{2}|[0-9]"  # ring closures: %(nnn), %nn, single digit
    r"|[-=#$:~/\\]"  # bonds, including the directional (stereo) bonds / and \
    r"|[().]"  # branches and the fragment separator
)
# One SELFIES symbol: a bracketed symbol or the fragment separator.
_SELFIES_SYMBOL = re.compile(r"\[[^\[\]]+\]|\.")


def tokenize_smiles(s: str) -> list[str]:
    """Split a SMILES string into atom-level tokens; `"".join(tokens) == s` always holds.

    Bracket atoms ("[C@@H]", "[nH]", "[NH3+]") are one token, as are "Cl", "Br" and the
    two-digit ring closures "%12". The empty string gives []. The string is not checked
    chemically (that is RDKit's job), only lexically.

    Raises:
        TokenizationError: `s` is not a string or contains a character no token covers;
            the message names the first such character and its 0-based position.
    """
    if not isinstance(s, str):
        raise TokenizationError(f"expected a SMILES string, got {type(s).__name__}")
    tokens = _SMILES_TOKEN.findall(s)
    # findall skips what it cannot match, so equal concatenation means full coverage.
    if "".join(tokens) == s:
        return tokens
    pos = 0
    while (m := _SMILES_TOKEN.match(s, pos)) is not None:
        pos = m.end()
    raise TokenizationError(
        f"cannot tokenize SMILES {s!r}: character {s[pos]!r} at position {pos} does not start a SMILES token"
    )


def _one_line(exc: BaseException) -> str:
    """Exception text collapsed to one line (selfies errors span several)."""
    return " ".join(str(exc).split())


@contextmanager
def applied_constraints(constraints: Mapping[str, int]) -> Iterator[None]:
    """Apply SELFIES semantic constraints for the duration of a block, then restore them.

    selfies keeps its constraints in process-global state; this saves the state in force,
    sets `constraints`, and puts the saved state back even if the block raises. Setting is
    skipped when the constraints are already in force, because selfies clears its internal
    caches on every set. Not thread-safe (neither is selfies' global state).
    """
    saved = sf.get_semantic_constraints()
    target = dict(constraints)
    if saved == target:
        yield
        return
    sf.set_semantic_constraints(target)
    try:
        yield
    finally:
        sf.set_semantic_constraints(saved)


def _check_constraints(values: Mapping[str, int]) -> dict[str, int]:
    """Validate a SELFIES constraint dict the way selfies would, without touching its state."""
    out: dict[str, int] = {}
    for key, value in values.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"invalid SELFIES constraint {key!r}: {value!r} (expected a non-negative integer)")
        out[key] = value
    if "?" not in out:
        raise UsageError("SELFIES constraints must contain the '?' key (capacity of unlisted atoms)")
    return out


@dataclass(frozen=True)
class Tokenizer:
    """How molecules become tokens for one model.

    Attributes:
        representation: "smiles" (atom-level regex tokens of the SMILES as given) or
            "selfies" (RDKit-canonical SMILES encoded with selfies, split into symbols).
        selfies_constraints: name of the selfies preset ("default", "octet_rule",
            "hypervalent"), or any label when `constraint_values` is given.
        constraint_values: the constraint dict itself, as sorted (atom, capacity) pairs.
            Filled from the preset at construction, so the exact constraints are frozen
            into the tokenizer and saved with the model by `to_dict` (a later selfies
            release changing a preset does not change how a saved model decodes).
            None for SMILES.
    """

    representation: str
    selfies_constraints: str = "default"
    constraint_values: tuple[tuple[str, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise UsageError(
                f"unknown representation {self.representation!r}; expected one of {', '.join(REPRESENTATIONS)}"
            )
        if self.representation == "smiles":
            object.__setattr__(self, "constraint_values", None)
            return
        if self.constraint_values is None:
            if self.selfies_constraints not in SELFIES_PRESETS:
                raise UsageError(
                    f"unknown SELFIES constraint preset {self.selfies_constraints!r}; "
                    f"expected one of {', '.join(SELFIES_PRESETS)}"
                )
            values = sf.get_preset_constraints(self.selfies_constraints)
        else:
            values = _check_constraints(dict(self.constraint_values))
        object.__setattr__(self, "constraint_values", tuple(sorted(values.items())))

    @property
    def constraints(self) -> dict[str, int] | None:
        """The SELFIES constraint dict this tokenizer applies (None for SMILES)."""
        return None if self.constraint_values is None else dict(self.constraint_values)

    def tokenize(self, smiles: str) -> list[str]:
        """Tokens of one molecule given as SMILES.

        SMILES: `tokenize_smiles(smiles)` (the string is used as given; canonicalize first
        if you want canonical tokens). SELFIES: RDKit-canonical SMILES, then
        `selfies.encoder` under this tokenizer's constraints, split into symbols.

        Raises:
            TokenizationError: empty or non-string input, a character outside the SMILES
                token set, a SMILES RDKit cannot parse, or a molecule the selfies encoder
                rejects (e.g. violating the constraints); the reason is in the message.
        """
        if not isinstance(smiles, str):
            raise TokenizationError(f"expected a SMILES string, got {type(smiles).__name__}")
        if not smiles.strip():
            raise TokenizationError("empty SMILES")
        if self.representation == "smiles":
            return tokenize_smiles(smiles)
        return self._tokenize_selfies(smiles)

    def _tokenize_selfies(self, smiles: str) -> list[str]:
        from molvae import chem  # lazy: keeps `import molvae.data.tokens` free of RDKit

        # Lex first: RDKit accepts some stray non-ASCII bytes (it reads "C\x80" as methane).
        tokenize_smiles(smiles.strip())
        canon = chem.canonical(smiles)
        if canon is None:
            _, reason = chem.parse(smiles)
            raise TokenizationError(f"RDKit cannot parse SMILES {smiles!r}: {reason}")
        if not canon:
            raise TokenizationError(f"SMILES {smiles!r} has no atoms")
        with applied_constraints(self.constraints or {}):
            try:
                encoded = sf.encoder(canon)
            except sf.EncoderError as exc:
                raise TokenizationError(f"SELFIES encoder rejected {canon!r}: {_one_line(exc)}") from exc
        tokens = list(sf.split_selfies(encoded))
        if not tokens:
            raise TokenizationError(f"SELFIES encoder returned nothing for {canon!r}")
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        """The SMILES string for a token sequence (special tokens must already be removed).

        SMILES: the concatenation. SELFIES: `selfies.decoder` of the concatenation under
        this tokenizer's constraints; the result is a SMILES (possibly "" for nothing).

        Raises:
            TokenizationError: a SELFIES token is not a bracketed symbol or ".", or the
                selfies decoder rejects the sequence.
        """
        if self.representation == "smiles":
            return "".join(tokens)
        for tok in tokens:
            # selfies silently drops text outside brackets; refuse it rather than lose it.
            if not isinstance(tok, str) or _SELFIES_SYMBOL.fullmatch(tok) is None:
                raise TokenizationError(f"{tok!r} is not a SELFIES symbol")
        with applied_constraints(self.constraints or {}):
            try:
                return sf.decoder("".join(tokens))
            except sf.DecoderError as exc:
                raise TokenizationError(f"SELFIES decoder rejected the sequence: {_one_line(exc)}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, including the constraint dict in force (SELFIES)."""
        return {
            "representation": self.representation,
            "selfies_constraints": self.selfies_constraints,
            "selfies_constraint_values": self.constraints,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tokenizer:
        """Inverse of `to_dict`; a saved constraint dict wins over the current preset.

        Raises:
            CheckpointError: `d` is not a tokenizer description.
        """
        try:
            values = d.get("selfies_constraint_values")
            return cls(
                representation=d["representation"],
                selfies_constraints=d.get("selfies_constraints", "default"),
                constraint_values=None if values is None else tuple(sorted(dict(values).items())),
            )
        except (KeyError, TypeError, ValueError, AttributeError, UsageError) as exc:
            raise CheckpointError(f"invalid tokenizer description {d!r}: {exc}") from exc


class Vocabulary:
    """Token <-> id mapping: ids 0..3 are `SPECIALS` (pad, bos, eos, unk), then the tokens.

    Immutable: `token_to_id` is a read-only mapping and `id_to_token` a tuple.
    """

    __slots__ = ("_id_to_token", "_token_to_id")

    def __init__(self, tokens: Iterable[str]):
        """`tokens` are the regular tokens in id order (ids 4, 5, ...); specials are added.

        Raises:
            ValueError: a token is not a non-empty string, is a special token, or repeats.
        """
        regular = tuple(tokens)
        seen: set[str] = set()
        for tok in regular:
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"vocabulary tokens must be non-empty strings, got {tok!r}")
            if tok in SPECIALS:
                raise ValueError(f"{tok!r} is a special token; pass only regular tokens")
            if tok in seen:
                raise ValueError(f"duplicate vocabulary token {tok!r}")
            seen.add(tok)
        self._id_to_token: tuple[str, ...] = SPECIALS + regular
        self._token_to_id = MappingProxyType({t: i for i, t in enumerate(self._id_to_token)})

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1) -> Vocabulary:
        """Vocabulary of every token seen at least `min_freq` times, most frequent first.

        Ties are broken by the token string, so the result depends only on the token
        counts, not on the order of the data. Special tokens in the data are ignored.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for toks in token_lists:
            counts.update(toks)
        kept = [t for t, c in counts.items() if c >= min_freq and t not in SPECIALS]
        kept.sort(key=lambda t: (-counts[t], t))
        return cls(kept)

    @property
    def token_to_id(self) -> Mapping[str, int]:
        """Read-only token -> id mapping, specials included."""
        return self._token_to_id

    @property
    def id_to_token(self) -> tuple[str, ...]:
        """Tokens indexed by id, specials first."""
        return self._id_to_token

    @property
    def tokens(self) -> tuple[str, ...]:
        """The regular tokens (ids 4...), without the specials."""
        return self._id_to_token[len(SPECIALS):]

    pad_id = property(lambda self: PAD_ID, doc="Id of <pad> (0).")
    bos_id = property(lambda self: BOS_ID, doc="Id of <bos> (1).")
    eos_id = property(lambda self: EOS_ID, doc="Id of <eos> (2).")
    unk_id = property(lambda self: UNK_ID, doc="Id of <unk> (3).")

    def __len__(self) -> int:
        return len(self._id_to_token)

    def __contains__(self, token: object) -> bool:
        return token in self._token_to_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._id_to_token == other._id_to_token

    def __hash__(self) -> int:
        return hash(self._id_to_token)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {', '.join(self.tokens[:8])}{', ...' if len(self) > 12 else ''})"

    def encode(
        self, tokens: Iterable[str], add_bos: bool = True, add_eos: bool = True, unknown: str = "error"
    ) -> list[int]:
        """Ids of `tokens`, optionally wrapped in <bos> ... <eos>.

        Args:
            unknown: "error" raises UnknownTokenError(token) on the first token not in the
                vocabulary; "unk" maps such tokens to `unk_id`.
        """
        t2i = self._token_to_id
        if unknown == "error":
            try:
                ids = [t2i[t] for t in tokens]
            except KeyError as exc:
                raise UnknownTokenError(exc.args[0]) from None
        elif unknown == "unk":
            ids = [t2i.get(t, UNK_ID) for t in tokens]
        else:
            raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Tokens for `ids` (ints or numpy integers).

        With `strip` (the default), decoding stops at the first <eos> and <pad>/<bos> are
        skipped; <unk> is kept. Without it, every id is mapped as is.

        Raises:
            IndexError: an id is outside 0..len(self)-1.
        """
        i2t, n = self._id_to_token, len(self._id_to_token)
        out: list[str] = []
        for raw in ids:
            i = int(raw)
            if not 0 <= i < n:
                raise IndexError(f"token id {i} is out of range for a vocabulary of {n} tokens")
            if strip:
                if i == EOS_ID:
                    break
                if i == PAD_ID or i == BOS_ID:
                    continue
            out.append(i2t[i])
        return out

    def unknown_tokens(self, tokens: Iterable[str]) -> list[str]:
        """Distinct tokens not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(t for t in tokens if t not in self._token_to_id))

    def to_json(self) -> str:
        """`{"format": "molvae-vocab", "version": 1, "tokens": [...]}`; list index == id."""
        return json.dumps(
            {"format": _VOCAB_FORMAT, "version": _VOCAB_VERSION, "tokens": list(self._id_to_token)}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Inverse of `to_json`.

        Raises:
            CheckpointError: not valid JSON, not a molvae vocabulary, a newer version, or
                the specials are not at ids 0..3.
        """
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"vocabulary is not valid JSON: {exc}") from exc
        if not isinstance(obj, dict) or obj.get("format") != _VOCAB_FORMAT:
            raise CheckpointError(f"not a molvae vocabulary (expected format {_VOCAB_FORMAT!r})")
        if obj.get("version") != _VOCAB_VERSION:
            raise CheckpointError(
                f"vocabulary version {obj.get('version')!r} is not supported (this molvae reads {_VOCAB_VERSION})"
            )
        toks = obj.get("tokens")
        if not isinstance(toks, list) or tuple(toks[: len(SPECIALS)]) != SPECIALS:
            raise CheckpointError(f"vocabulary tokens must be a list starting with {list(SPECIALS)}")
        try:
            return cls(toks[len(SPECIALS):])
        except ValueError as exc:
            raise CheckpointError(f"invalid vocabulary: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_json()` to `path` atomically (temporary file, then rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a file written by `save`. Raises CheckpointError if missing or invalid."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(f"cannot read vocabulary {os.fspath(path)!r}: {exc}") from exc
        return cls.from_json(text)
