"""Exceptions with messages that name the cause and the fix."""


class GDFlowsError(ValueError):
    """Base class for input errors raised by gdflows."""


class NotHolomorphicError(GDFlowsError):
    """The loss is not holomorphic, but the Principal Flow needs complex parameters."""


class NonFiniteLossError(GDFlowsError):
    """The loss (or its gradient) is not finite where a computation starts."""
