"""Continuous-time models of GD. Each returns a field ``(theta, t) -> dtheta/dt``."""

from gdflows.flows.central import Central, central
from gdflows.flows.igr import IGR, igr
from gdflows.flows.ngf import NGF, ngf
from gdflows.flows.principal import Principal, principal
from gdflows.flows.third_order import ThirdOrder, third_order

__all__ = ["ngf", "igr", "third_order", "principal", "central", "Central", "NGF", "IGR", "ThirdOrder", "Principal"]
