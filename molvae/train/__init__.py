"""Training: `fit(TrainConfig)` writes a checkpoint directory; configs, schedules and resume state."""
from molvae.train.config import TrainConfig, load_train_config
from molvae.train.loop import fit

__all__ = ["TrainConfig", "fit", "load_train_config"]
