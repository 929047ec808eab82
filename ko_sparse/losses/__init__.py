"""Training objectives as sentence-transformers loss modules: the notebook's recipe (ours, on the
library's parts) and the retrieval recipe (the library's losses, configured)."""

from ko_sparse.losses.config import LossConfig
from ko_sparse.losses.notebook import NotebookSpladeLoss
from ko_sparse.losses.retrieval import retrieval_loss
from ko_sparse.losses.token_activation import token_activation_loss

__all__ = ["LossConfig", "NotebookSpladeLoss", "retrieval_loss", "token_activation_loss"]
