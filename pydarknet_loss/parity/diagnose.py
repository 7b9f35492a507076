"""The diagnosis, kept importable under its old name: see
:mod:`pydarknet_loss.parity.diagnosis` (the engine and the registry of causes)."""
from .diagnosis import (ALIASES, BY_CODE, CAUSES, PARTS, REGISTRY, Array, Cause, CauseSpec, Claim, Diagnosis,
                        Evidence, PartRow, canonical, diagnose, evidence, readme_table)

__all__ = ["ALIASES", "Array", "BY_CODE", "CAUSES", "Cause", "CauseSpec", "Claim", "Diagnosis", "Evidence", "PARTS",
           "PartRow", "REGISTRY", "canonical", "diagnose", "evidence", "readme_table"]
