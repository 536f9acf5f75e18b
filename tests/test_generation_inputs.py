"""Molecules as chemists write them: stereo marks and salts the shipped MOSES models cannot spell are encoded with
their stereochemistry removed or standardized, flagged and warned about once; strict=True still refuses them."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import molvae
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import DataError
from molvae.generation.inputs import check_molecule, encode_inputs, spell_molecule
from molvae.model import VAE, ModelConfig

NICOTINE = "CN1CCC[C@H]1c1cccnc1"
FLAT = "CN1CCCC1c1cccnc1"  # its canonical SMILES without stereo


@pytest.fixture(scope="module")
def default():
    return molvae.load(device="cpu", precision="fp32", n_jobs=1)


def _relaxed_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "another form than written" in str(w.message)]


def test_spelling_forms(default) -> None:
    tok, vocab = default.tokenizer, default.vocab
    plain = spell_molecule("OCC", tok, vocab)
    assert plain.smiles == "CCO" and not plain.stereo_removed and not plain.standardized
    chiral = spell_molecule(NICOTINE, tok, vocab)
    assert chiral.smiles == FLAT and chiral.stereo_removed and not chiral.standardized
    assert chiral.ids == spell_molecule(FLAT, tok, vocab).ids
    trans = spell_molecule("C/C=C/CO", tok, vocab)
    assert trans.smiles == "CC=CCO" and trans.stereo_removed
    charged = spell_molecule("C[NH+]1CCCC1c1cccnc1", tok, vocab)
    assert charged.smiles == FLAT and charged.standardized and not charged.stereo_removed
    salt = spell_molecule(NICOTINE + ".Cl", tok, vocab)
    assert salt.smiles == FLAT and salt.standardized and salt.stereo_removed
    # a token that is not a stereo mark still refuses the molecule, and the reason names it
    selenium = spell_molecule("C[C@H](N)C[Se]C", tok, vocab)
    assert selenium.ids is None and "'[Se]'" in selenium.reason
    # isotopes are not stereochemistry
    assert spell_molecule("[2H]C(C)O", tok, vocab).ids is None


def test_strict_keeps_refusing(default) -> None:
    tok, vocab = default.tokenizer, default.vocab
    strict = spell_molecule(NICOTINE, tok, vocab, strict=True)
    assert strict.ids is None and "'[C@H]'" in strict.reason and "stereochemistry removed" in strict.reason
    assert check_molecule(NICOTINE, tok, vocab)[0] is None  # the molecule exactly as written
    with pytest.raises(DataError, match=r"row 1 'CN1CCC\[C@H\]1c1cccnc1'.*without strict"):
        encode_inputs(["CCO", NICOTINE], tok, vocab, strict=True)
    with pytest.warns(RuntimeWarning, match="skipped 1 of 2"):
        enc = encode_inputs(["CCO", NICOTINE], tok, vocab, "skip", strict=True)
    assert list(enc.rows) == [0] and not enc.stereo_removed.any()


def test_flags_and_one_summary_warning(default) -> None:
    items = ["CCO", NICOTINE, "C[NH+]1CCCC1c1cccnc1", NICOTINE + ".Cl", "C/C=C/CO", "CC(C)O"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = encode_inputs(items, default.tokenizer, default.vocab)
    assert list(enc.rows) == list(range(6))
    assert list(enc.stereo_removed) == [False, True, False, True, True, False]
    assert list(enc.standardized) == [False, False, True, True, False, False]
    assert enc.smiles[:4] == ["CCO", FLAT, FLAT, FLAT]
    flags = enc.flags()
    assert list(flags.columns) == ["stereo_removed", "standardized"] and len(flags) == 6
    [message] = _relaxed_warnings(caught)
    assert message.startswith("4 of 6 molecules encoded in another form than written")
    assert "3 with stereochemistry removed" in message and "2 standardized" in message
    assert f"row 1 {NICOTINE!r} as {FLAT!r}" in message and "strict=True" in message
    # nothing to say when every molecule is spelled as written
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encode_inputs(["CCO", "c1ccccc1"], default.tokenizer, default.vocab)
    assert not _relaxed_warnings(caught)


def test_a_vocabulary_with_stereo_tokens_keeps_stereo() -> None:
    tok = Tokenizer("smiles")
    vocab = Vocabulary.build([tok.tokenize(s) for s in (NICOTINE, "CCO")])
    spelled = spell_molecule(NICOTINE, tok, vocab)
    assert spelled.smiles == NICOTINE and not spelled.stereo_removed


def test_default_model_encodes_reconstructs_and_predicts_nicotine(default) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        z = default.encode([NICOTINE, "CCO"])
        rec = default.reconstruct(NICOTINE, seed=0)
        pred = default.predict([NICOTINE])
    assert len(_relaxed_warnings(caught)) == 3  # one per call
    assert np.array_equal(z, default.encode([FLAT, "CCO"]))  # the same batch, so the same padding
    assert len(rec) == 1 and rec["valid"].item()
    flat_pred = default.predict([FLAT])
    for name in default.prop_names:
        assert pred[name].item() == pytest.approx(flat_pred[name].item())


def test_selfies_model_encodes_nicotine() -> None:
    """An untrained SELFIES model whose vocabulary, like MOSES's, has no stereo symbols: only the plumbing
    (the SELFIES spelling of the flat form) is under test."""
    tok = Tokenizer("selfies")
    vocab = Vocabulary.build(tok.tokenize(s) for s in [FLAT, "CCO", "c1ccccc1"])
    torch.manual_seed(0)
    net = VAE(ModelConfig(vocab_size=len(vocab), embed_dim=16, enc_hidden=32, latent_dim=8, dec_hidden=32,
                          dec_layers=1, max_len=40))
    model = molvae.MolVAE(net, tok, vocab, device="cpu", precision="fp32", n_jobs=1)
    assert vocab.unknown_tokens(tok.tokenize(NICOTINE))  # the stereo symbol, e.g. [C@@H1]
    with pytest.warns(RuntimeWarning, match="stereochemistry removed"):
        z = model.encode(NICOTINE)
    assert np.array_equal(z, model.encode(FLAT))


def test_optimize_starts_from_a_chiral_molecule(default) -> None:
    from molvae import chem

    with pytest.warns(RuntimeWarning, match="stereochemistry removed"):
        res = molvae.optimize(default, objective="qed", start=NICOTINE, n_starts=1, steps=1, decode_every=1,
                              method="random", seed=0)
    assert len(res) == 1 and res["start"].item() == NICOTINE
    assert res["qed_before"].item() == pytest.approx(chem.properties([NICOTINE], ["qed"])["qed"].item())


def test_result_tables_flag_the_form_encoded(default) -> None:
    items = ["CCO", NICOTINE, NICOTINE + ".Cl"]
    with pytest.warns(RuntimeWarning, match="another form than written"):
        rec = default.reconstruct(items, seed=0)
    assert list(rec["stereo_removed"]) == [False, True, True] and list(rec["standardized"]) == [False, False, True]
    # exact compares the output with the molecule encoded (without its stereo), not with the input as written
    flat = default.reconstruct([FLAT, FLAT], seed=0)
    assert list(rec["exact"][1:]) == list(flat["exact"])
    with pytest.warns(RuntimeWarning, match="another form than written"):
        pred = default.predict(items)
    assert list(pred.columns[:4]) == ["row", "smiles", "stereo_removed", "standardized"]
    assert list(pred["stereo_removed"]) == [False, True, True] and pred["smiles"][1] == NICOTINE
    with pytest.raises(DataError, match="without strict"):
        default.predict(items, strict=True)
    with pytest.raises(DataError, match="without strict"):
        default.encode(NICOTINE, strict=True)
    with pytest.warns(RuntimeWarning, match="skipped 2 of 3"):
        strict = default.reconstruct(items, strict=True, on_invalid="skip", seed=0)
    assert list(strict["row"]) == [0]


def test_cli_strict(run) -> None:
    code, text = run("encode", NICOTINE)
    assert code == 0 and "stereochemistry removed" in text
    code, text = run("reconstruct", NICOTINE, "--strict")
    assert code == 1 and "[C@H]" in text and "without strict" in text


def test_one_length_rule_for_every_command(default) -> None:
    from molvae.generation.inputs import length_reason

    tok, vocab = default.tokenizer, default.vocab
    assert length_reason(default.max_len, default.max_len) is None
    assert length_reason(default.max_len + 1, default.max_len) == (
        f"longer than the model's {default.max_len} tokens ({default.max_len + 1} with BOS and EOS)")
    chain = "C" * (default.max_len + 5)
    assert len(encode_inputs([chain], tok, vocab).ids) == 1  # no max_len: no length check (scores, training data)
    with pytest.raises(DataError, match="row 1 .*longer than the model's"):
        encode_inputs(["CCO", chain], tok, vocab, max_len=default.max_len)
    with pytest.raises(DataError, match="longer than the model's"):
        default.encode([chain])
    table = default.score([chain, "CCO"])
    assert table["reason"].tolist() == [length_reason(len(encode_inputs([chain], tok, vocab).ids[0]),
                                                      default.max_len), ""]
