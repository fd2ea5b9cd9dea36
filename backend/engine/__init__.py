"""The message checker and masker (Python engine).

The same algorithm runs in JavaScript in extension/engine/, from the same compiled payload: rules
folder → `compile_rules` → payload (JSON) → `Engine`. shared_rules/README.md is the specification;
shared_rules/vectors/ are the cases both engines must pass.
"""

from backend.engine.checker import Engine
from backend.engine.rules import RulesError, compile_rules, load_rules_folder

__all__ = ["Engine", "RulesError", "compile_rules", "load_rules_folder"]
