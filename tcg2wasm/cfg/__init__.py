"""Control flow: regions of translation blocks and the safe Relooper wrapper."""

from tcg2wasm.cfg.region import Region, RegionError, discover_region, region_from_pcs
from tcg2wasm.cfg.relooper import RelooperError, RelooperGraph

__all__ = ["Region", "RegionError", "RelooperError", "RelooperGraph", "discover_region", "region_from_pcs"]
