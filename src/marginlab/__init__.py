"""marginlab: the implicit bias of gradient descent toward maximum margin, measured exactly."""

__version__ = "0.1.0"
