"""Why another implementation departs from darknet: an engine
(:mod:`.engine`) and a registry of causes (:mod:`.registry`, one module per
cause in :mod:`.causes`).  A cause claims an element only where applying
its one departure to darknet's own computation on that input reproduces
the implementation's value there; see :mod:`.engine` for the steps and
:mod:`.parts` for darknet's parts of a delta."""
from .engine import CODES, Cause, Diagnosis, diagnose
from .evidence import Evidence, evidence
from .model import Array, CauseSpec, Claim
from .parts import PARTS, PartRow
from .registry import ALIASES, BY_CODE, CAUSES, REGISTRY, canonical, readme_table

__all__ = ["CODES", "ALIASES", "Array", "BY_CODE", "CAUSES", "Cause", "CauseSpec", "Claim", "Diagnosis", "Evidence", "PARTS",
           "PartRow", "REGISTRY", "canonical", "diagnose", "evidence", "readme_table"]
