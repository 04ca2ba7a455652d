"""Golden models of the shared blocks in ``hw/common``."""
from .arbiter import RoundRobinModel, priority_grant

__all__ = ["RoundRobinModel", "priority_grant"]
