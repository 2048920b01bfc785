"""The one exception type analysis raises for bad input.

Defined in grokcore.errors (grokcore.damage raises it too, for sweeps and analysis alike); this is
the name analysis's users import.
"""

from grokcore.errors import AnalysisError

__all__ = ["AnalysisError"]
