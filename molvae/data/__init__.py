"""Data: tokenizers and vocabularies, reading and writing molecule files, the data sets molvae knows
(embedded MOSES subsets, full MOSES), row-by-row validation with rejected rows kept, and batching."""
from molvae.data.batching import EncodedData, batches, data_hash, encode, split_indices
from molvae.data.datasets import cache_dir, embedded_path, fetch_moses
from molvae.data.read import read_table
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.data.validation import ValidationReport, load_molecules
from molvae.data.write import output_format, write_molecules

__all__ = [
    "Tokenizer", "Vocabulary", "read_table", "output_format", "write_molecules", "cache_dir", "embedded_path",
    "fetch_moses", "ValidationReport", "load_molecules", "EncodedData", "encode", "split_indices", "batches",
    "data_hash",
]
