"""PromQL value types, below both the AST and the function signatures that use them."""

from __future__ import annotations

import enum

__all__ = ["ValueType"]


class ValueType(enum.Enum):
    NONE = "none"
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"

    def __str__(self) -> str:
        return self.value

    @property
    def document_name(self) -> str:
        """The name Prometheus uses in error messages ("instant vector", "range vector", ...)."""
        return {
            ValueType.VECTOR: "instant vector",
            ValueType.MATRIX: "range vector",
            ValueType.SCALAR: "scalar",
            ValueType.STRING: "string",
            ValueType.NONE: "none",
        }[self]
