"""Continuous-time models of GD: each a :class:`Flow` with a field ``(theta, t) -> dtheta/dt``."""

from gdflows.flows.base import FieldInfo, Flow, VectorField
from gdflows.flows.central import Central, central
from gdflows.flows.igr import IGR, igr
from gdflows.flows.ngf import NGF, ngf
from gdflows.flows.principal import PFInfo, Principal, principal
from gdflows.flows.third_order import ThirdOrder, third_order

__all__ = [
    "Flow",
    "FieldInfo",
    "VectorField",
    "ngf",
    "igr",
    "third_order",
    "principal",
    "central",
    "NGF",
    "IGR",
    "ThirdOrder",
    "Principal",
    "PFInfo",
    "Central",
]
