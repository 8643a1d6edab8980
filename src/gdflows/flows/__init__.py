"""Continuous-time models of GD: each a :class:`Flow` with a field ``(theta, t) -> dtheta/dt``.

:data:`FLOWS` is the registry of the flows that the comparison commands solve beside GD (``gdflows quadratic``,
``toys``, ``track``): a flow added there (its module, and one entry here) is known to all of them and to their
``--flows`` choices. It is readable without JAX: every name of this package loads on first use.
"""

from gdflows._lazy import entry, lazy_package, load

# name -> (factory "module:function" taking (loss, lr, **kwargs), its keyword arguments)
FLOWS: dict[str, tuple[str, dict]] = {
    "NGF": ("gdflows.flows.ngf:ngf", {}),
    "IGR": ("gdflows.flows.igr:igr", {}),
    "third-order": ("gdflows.flows.third_order:third_order", {}),
    "PF": ("gdflows.flows.principal:principal", {}),
    "PF+NP": ("gdflows.flows.principal:principal", {"non_principal": True}),
    "central": ("gdflows.flows.central:central", {}),
}


def make_flow(name: str, loss, lr):
    """The registered flow ``name`` of ``loss`` at learning rate ``lr`` (see :data:`FLOWS`)."""
    factory, kwargs = entry(FLOWS, name, "flow")
    return load(factory)(loss, lr, **kwargs)


_API = {
    "Flow": "gdflows.flows.base",
    "FieldInfo": "gdflows.flows.base",
    "VectorField": "gdflows.flows.base",
    "ngf": "gdflows.flows.ngf",
    "NGF": "gdflows.flows.ngf",
    "igr": "gdflows.flows.igr",
    "IGR": "gdflows.flows.igr",
    "third_order": "gdflows.flows.third_order",
    "ThirdOrder": "gdflows.flows.third_order",
    "principal": "gdflows.flows.principal",
    "Principal": "gdflows.flows.principal",
    "PFInfo": "gdflows.flows.principal",
    "central": "gdflows.flows.central",
    "Central": "gdflows.flows.central",
    "central_rmsprop": "gdflows.flows.central_rmsprop",
    "CentralRMSProp": "gdflows.flows.central_rmsprop",
}
__all__ = ["FLOWS", "make_flow", *_API]
lazy_package(__name__, _API)
