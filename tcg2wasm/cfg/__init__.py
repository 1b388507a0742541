"""Control flow: regions of translation blocks and the safe Relooper wrapper."""

from tcg2wasm.cfg.region import Region, RegionError, discover_region, region_from_pcs

__all__ = ["Region", "RegionError", "RelooperError", "RelooperGraph", "discover_region", "region_from_pcs"]
