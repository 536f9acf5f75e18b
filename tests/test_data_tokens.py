"""Tests for molvae.data.tokens: SMILES lexer, SELFIES tokenizer, vocabulary."""
from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path

import pytest
import selfies as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molvae import chem
from molvae.errors import CheckpointError, TokenizationError, UnknownTokenError, UsageError
from molvae.data.tokens import SPECIALS, Tokenizer, Vocabulary, applied_constraints, tokenize_smiles

DATA = Path(__file__).resolve().parents[1] / "data" / "moses_train_20k.csv"
N_ROUND_TRIP = 10_000  # the issue asks for 10,000 MOSES molecules


@pytest.fixture(scope="module")
def moses() -> list[str]:
    with DATA.open(newline="") as fh:
        return [row["SMILES"] for row in csv.DictReader(fh)][:N_ROUND_TRIP]


# ---------------------------------------------------------------- SMILES lexer


def test_smiles_round_trip_moses(moses: list[str]) -> None:
    tok = Tokenizer("smiles")
    token_lists = [tok.tokenize(s) for s in moses]
    vocab = Vocabulary.build(token_lists)
    ok = 0
    for s, toks in zip(moses, token_lists):
        ids = vocab.encode(toks)
        ok += tok.detokenize(vocab.decode(ids)) == s and "".join(toks) == s
    assert ok / len(moses) == 1.0
    assert len(moses) == N_ROUND_TRIP


@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("C[C@@H](N)O", ["C", "[C@@H]", "(", "N", ")", "O"]),
        ("C[C@H]1CC1", ["C", "[C@H]", "1", "C", "C", "1"]),
        ("ClCBr", ["Cl", "C", "Br"]),
        ("BrC(Cl)B", ["Br", "C", "(", "Cl", ")", "B"]),
        ("C%12CCCCC%12", ["C", "%12", "C", "C", "C", "C", "C", "%12"]),
        ("C%(123)CC%(123)", ["C", "%(123)", "C", "C", "%(123)"]),
        ("C12CC1C2", ["C", "1", "2", "C", "C", "1", "C", "2"]),
        ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
        ("C[NH3+]", ["C", "[NH3+]"]),
        ("C/C=C\\C", ["C", "/", "C", "=", "C", "\\", "C"]),
        ("CC#N", ["C", "C", "#", "N"]),
        ("C$C", ["C", "$", "C"]),
        ("c1ccccc1:c", ["c", "1", "c", "c", "c", "c", "c", "1", ":", "c"]),
        ("C~C-C", ["C", "~", "C", "-", "C"]),
        ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
        ("*C(=O)O*", ["*", "C", "(", "=", "O", ")", "O", "*"]),
        ("[13CH3]OP(=S)(F)I", ["[13CH3]", "O", "P", "(", "=", "S", ")", "(", "F", ")", "I"]),
        ("o1cccc1", ["o", "1", "c", "c", "c", "c", "1"]),
        ("", []),
    ],
)
def test_tricky_smiles_tokens(smiles: str, expected: list[str]) -> None:
    assert tokenize_smiles(smiles) == expected


@pytest.mark.parametrize(
    "smiles, char, pos",
    [("C?C", "?", 1), ("CC[NH", "[", 2), ("C C", " ", 1), ("CX", "X", 1), ("C[]C", "[", 1), ("CC%1", "%", 2)],
)
def test_untokenizable_smiles_names_character_and_position(smiles: str, char: str, pos: int) -> None:
    with pytest.raises(TokenizationError) as info:
        tokenize_smiles(smiles)
    assert f"character {char!r} at position {pos}" in str(info.value)


def test_tokenize_smiles_rejects_non_string() -> None:
    with pytest.raises(TokenizationError):
        tokenize_smiles(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- SELFIES


def test_selfies_round_trip_moses(moses: list[str]) -> None:
    """Canonical SMILES -> SELFIES -> SMILES gives the same canonical molecule (10k: ~12 s)."""
    tok = Tokenizer("selfies")
    start = time.process_time()
    failures = []
    for s in moses:
        try:
            back = tok.detokenize(tok.tokenize(s))
        except TokenizationError as exc:
            failures.append((s, str(exc)))
            continue
        if chem.canonical(back) != chem.canonical(s):
            failures.append((s, back))
    rate = 1 - len(failures) / len(moses)
    assert rate >= 0.999, failures[:10]
    assert time.process_time() - start < 30  # CPU-time budget guard: ~12 s measured on the dev box


def test_selfies_tokens_are_symbols() -> None:
    toks = Tokenizer("selfies").tokenize("OCC")  # canonicalized first: CCO
    assert toks == ["[C]", "[C]", "[O]"]
    assert Tokenizer("selfies").detokenize(["[C]", ".", "[O]"]) == "C.O"


@pytest.mark.parametrize("bad", ["", "   ", "C1CC", "not a smiles", "C(C", "C\x80", "CC O"])
def test_selfies_tokenize_unparseable(bad: str) -> None:
    with pytest.raises(TokenizationError):
        Tokenizer("selfies").tokenize(bad)


def test_selfies_tokenize_non_string() -> None:
    with pytest.raises(TokenizationError, match="expected a SMILES string"):
        Tokenizer("selfies").tokenize(3)  # type: ignore[arg-type]


def test_selfies_encoder_failure_is_reported_with_reason() -> None:
    # Hypervalent iodine violates the default constraints (I: 1 bond) under strict encoding.
    with pytest.raises(TokenizationError) as info:
        Tokenizer("selfies").tokenize("FI(F)F")
    assert "I with 3 bond(s)" in str(info.value)
    assert isinstance(info.value.__cause__, sf.EncoderError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("tokens", [["C"], ["[C]", "O"], ["[Xx]"], ["[C", "]"], ["<unk>"]])
def test_selfies_detokenize_rejects_bad_symbols(tokens: list[str]) -> None:
    with pytest.raises(TokenizationError):
        Tokenizer("selfies").detokenize(tokens)


def test_constraints_are_restored() -> None:
    before = sf.get_semantic_constraints()
    for preset in ("default", "octet_rule", "hypervalent"):
        tok = Tokenizer("selfies", preset)
        assert tok.detokenize(tok.tokenize("CCSCl")) == "CCSCl"
        with pytest.raises(TokenizationError):
            tok.tokenize("FI(F)(F)(F)(F)(F)(F)F")  # I with 8 bonds: rejected by every preset
        assert sf.get_semantic_constraints() == before
    with pytest.raises(TokenizationError):  # sulfone: S with 6 bonds, too many for octet_rule
        Tokenizer("selfies", "octet_rule").tokenize("CS(=O)(=O)C")
    assert sf.get_semantic_constraints() == before


def test_constraints_are_applied_and_global_state_is_kept() -> None:
    sf.set_semantic_constraints("octet_rule")
    try:
        assert Tokenizer("selfies").detokenize(["[C]", "[S]", "[=O]", "[=O]"]) == "CS=O"  # default, not octet
        assert Tokenizer("selfies", "hypervalent").detokenize(["[C]", "[Cl]", "[C]"]) == "CClC"
        assert Tokenizer("selfies").detokenize(["[C]", "[Cl]", "[C]"]) == "CCl"
        assert sf.get_semantic_constraints() == sf.get_preset_constraints("octet_rule")
    finally:
        sf.set_semantic_constraints("default")


def test_applied_constraints_restores_on_exception() -> None:
    before = sf.get_semantic_constraints()
    with pytest.raises(RuntimeError):
        with applied_constraints(sf.get_preset_constraints("hypervalent")):
            assert sf.get_semantic_constraints()["Cl"] == 7
            raise RuntimeError("boom")
    assert sf.get_semantic_constraints() == before


def test_tokenizer_dict_round_trip_stores_constraints() -> None:
    for preset in ("default", "octet_rule", "hypervalent"):
        tok = Tokenizer("selfies", preset)
        d = json.loads(json.dumps(tok.to_dict()))
        assert d["selfies_constraint_values"] == sf.get_preset_constraints(preset)
        assert Tokenizer.from_dict(d) == tok
    smiles_tok = Tokenizer("smiles")
    assert Tokenizer.from_dict(smiles_tok.to_dict()) == smiles_tok
    assert smiles_tok.to_dict()["selfies_constraint_values"] is None


def test_saved_constraints_win_over_preset() -> None:
    # A model saved when "default" meant something else must decode as it was trained.
    d = Tokenizer("selfies").to_dict()
    d["selfies_constraint_values"]["Cl"] = 7
    assert Tokenizer.from_dict(d).detokenize(["[C]", "[Cl]", "[C]"]) == "CClC"


def test_tokenizer_rejects_bad_config() -> None:
    with pytest.raises(UsageError):
        Tokenizer("inchi")
    with pytest.raises(UsageError):
        Tokenizer("selfies", "strict")
    with pytest.raises(UsageError):
        Tokenizer("selfies", "custom", (("C", 4),))  # no '?' key
    with pytest.raises(CheckpointError):
        Tokenizer.from_dict({"selfies_constraints": "default"})
    with pytest.raises(CheckpointError):
        Tokenizer.from_dict({"representation": "selfies", "selfies_constraint_values": {"?": -1}})


# ---------------------------------------------------------------- fuzzing

_SMILES_CHARS = "CNOSPFIBrlcnospH()[]=#$:~-/\\.%@+*0123456789 ?X"
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(s: str, ops: list[tuple[int, int, str]]) -> str:
    """Insert, delete or swap characters of `s`; positions are taken modulo the length."""
    chars = list(s)
    for op, pos, ch in ops:
        if op == 0 or not chars:
            chars.insert(pos % (len(chars) + 1), ch)
        elif op == 1:
            del chars[pos % len(chars)]
        else:
            i, j = pos % len(chars), (pos * 7 + 3) % len(chars)
            chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _check_smiles_lexer(text: str) -> None:
    try:
        toks = tokenize_smiles(text)
    except TokenizationError:
        return
    assert "".join(toks) == text


def _check_selfies(text: str) -> None:
    tok = Tokenizer("selfies")
    before = sf.get_semantic_constraints()
    try:
        toks = tok.tokenize(text)
    except TokenizationError:
        assert sf.get_semantic_constraints() == before
        return
    # No canonical-equality check here: mutants such as "CC(C):NC" (an aromatic bond between
    # aliphatic atoms) parse in RDKit but legitimately come back as a double bond from selfies.
    assert isinstance(tok.detokenize(toks), str)
    assert sf.get_semantic_constraints() == before


@_FUZZ
@given(st.one_of(st.text(), st.text(alphabet=_SMILES_CHARS)))
def test_fuzz_smiles_lexer_random_text(text: str) -> None:
    _check_smiles_lexer(text)


_mutations = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 200), st.sampled_from(list(_SMILES_CHARS) + ["é", "\x00"])),
    min_size=1,
    max_size=4,
)


@_FUZZ
@given(st.integers(0, N_ROUND_TRIP - 1), _mutations)
def test_fuzz_mutated_moses_smiles(moses: list[str], index: int, ops: list[tuple[int, int, str]]) -> None:
    text = _mutate(moses[index], ops)
    _check_smiles_lexer(text)
    _check_selfies(text)


@_FUZZ
@given(st.one_of(st.text(max_size=30), st.text(alphabet=_SMILES_CHARS, max_size=30)))
def test_fuzz_selfies_random_text(text: str) -> None:
    _check_selfies(text)


@_FUZZ
@given(st.lists(st.sampled_from(sorted(sf.get_semantic_robust_alphabet()) + [".", "[Branch3]", "[Ring3]", "[C"])))
def test_fuzz_selfies_detokenize(tokens: list[str]) -> None:
    try:
        out = Tokenizer("selfies").detokenize(tokens)
    except TokenizationError:
        return
    assert isinstance(out, str)


# ---------------------------------------------------------------- vocabulary


def test_vocab_specials_and_build_order() -> None:
    vocab = Vocabulary.build([["C", "C", "O"], ["N", "O", "C"], ["Cl"]])
    assert vocab.id_to_token[:4] == SPECIALS
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.tokens == ("C", "O", "Cl", "N")  # frequency desc, then token
    assert len(vocab) == 8 and "Cl" in vocab and "Br" not in vocab
    assert vocab.token_to_id["C"] == 4


def test_vocab_build_is_deterministic_and_honours_min_freq(moses: list[str]) -> None:
    lists = [tokenize_smiles(s) for s in moses[:2000]]
    shuffled = lists[:]
    random.Random(0).shuffle(shuffled)
    assert Vocabulary.build(lists) == Vocabulary.build(shuffled)
    rare = Vocabulary.build(lists, min_freq=50)
    assert set(rare.tokens) < set(Vocabulary.build(lists).tokens)
    with pytest.raises(ValueError):
        Vocabulary.build(lists, min_freq=0)


def test_vocab_json_round_trip(tmp_path: Path, moses: list[str]) -> None:
    vocab = Vocabulary.build(Tokenizer("selfies").tokenize(s) for s in moses[:300])
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    path = tmp_path / "vocab.json"
    vocab.save(path)
    obj = json.loads(path.read_text())
    assert obj == {"format": "molvae-vocab", "version": 1, "tokens": list(vocab.id_to_token)}
    assert Vocabulary.load(path) == vocab
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary left behind


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"format": "other", "version": 1, "tokens": list(SPECIALS)}),
        json.dumps({"format": "molvae-vocab", "version": 2, "tokens": list(SPECIALS)}),
        json.dumps({"format": "molvae-vocab", "version": 1, "tokens": ["C", *SPECIALS]}),
        json.dumps({"format": "molvae-vocab", "version": 1, "tokens": [*SPECIALS, "C", "C"]}),
    ],
)
def test_vocab_from_json_rejects_bad_files(text: str) -> None:
    with pytest.raises(CheckpointError):
        Vocabulary.from_json(text)


def test_vocab_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        Vocabulary.load(tmp_path / "nope.json")


def test_vocab_encode_decode() -> None:
    vocab = Vocabulary(["C", "O", "N"])
    assert vocab.encode(["C", "O"]) == [1, 4, 5, 2]
    assert vocab.encode(["C"], add_bos=False, add_eos=False) == [4]
    assert vocab.decode([1, 4, 5, 2, 6, 0, 0]) == ["C", "O"]  # stops at eos
    assert vocab.decode([0, 1, 4, 3, 0]) == ["C", "<unk>"]  # skips pad/bos, keeps unk
    assert vocab.decode([1, 4, 2, 5], strip=False) == ["<bos>", "C", "<eos>", "O"]
    with pytest.raises(IndexError):
        vocab.decode([99])


def test_vocab_unknown_token() -> None:
    vocab = Vocabulary(["C", "O"])
    with pytest.raises(UnknownTokenError) as info:
        vocab.encode(["C", "[Se]", "O"])
    assert info.value.token == "[Se]" and "'[Se]'" in str(info.value)
    assert isinstance(info.value, TokenizationError)
    assert vocab.encode(["C", "[Se]"], unknown="unk") == [1, 4, 3, 2]
    assert vocab.unknown_tokens(["[Se]", "C", "Br", "[Se]"]) == ["[Se]", "Br"]
    with pytest.raises(ValueError):
        vocab.encode(["C"], unknown="skip")


@pytest.mark.parametrize("tokens", [["C", "C"], ["<pad>"], [""]])
def test_vocab_rejects_bad_tokens(tokens: list[str]) -> None:
    with pytest.raises(ValueError):
        Vocabulary(tokens)
