"""The model: the torch VAE (encoder, decoder, property head, losses), batched decoding loops and the
checkpoint directory format. Knows nothing of RDKit."""
from molvae.model.checkpoint import CheckpointMeta, load_checkpoint, save_model
from molvae.model.losses import kl_divergence
from molvae.model.vae import VAE, Decoder, Encoder, ModelConfig, PropertyHead

__all__ = ["ModelConfig", "Encoder", "Decoder", "PropertyHead", "VAE", "kl_divergence", "CheckpointMeta",
           "save_model", "load_checkpoint"]
