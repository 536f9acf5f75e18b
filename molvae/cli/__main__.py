"""`python -m molvae.cli`: the `molvae` command (used by torchrun for multi-GPU training)."""
from molvae.cli.app import main

main()
