"""dgcn: the Dual Graph Convolutional Network (DGCNet, BMVC 2019) for semantic segmentation.

Import subpackages by name (``from dgcn import models``); this module imports nothing heavy.
"""

from dgcn.config import smoke_mode
from dgcn.errors import CheckpointError, ConfigError, DatasetError, DgcnError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "smoke_mode",
    "DgcnError",
    "DatasetError",
    "ConfigError",
    "CheckpointError",
]
