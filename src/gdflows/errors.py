"""Exceptions with messages that name the cause and the fix."""


class GDFlowsError(ValueError):
    """Base class for input errors raised by gdflows."""


class NotHolomorphicError(GDFlowsError):
    """The loss is not holomorphic, but the Principal Flow needs complex parameters.

    The fix is in the loss (smooth activations, no abs/max/comparisons on the
    parameter path) or in the flow (one whose state stays real); the learning
    rate plays no part in the check.
    """


class NonFiniteLossError(GDFlowsError):
    """The loss (or its gradient) is not finite where a computation starts."""
