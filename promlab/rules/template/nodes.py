"""Parse-tree nodes of a template; ``str(node)`` prints the node as Go's ``Node.String()`` does
(the text shown in ``executing "name" at <...>`` errors)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ActionNode",
    "BoolNode",
    "BranchNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "DotNode",
    "FieldNode",
    "IdentifierNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "StringNode",
    "TemplateNode",
    "TextNode",
    "VariableNode",
]


@dataclass(slots=True)
class TextNode:
    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class DotNode:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode:
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode:
    """A numeric constant; ``value`` is what it becomes as an untyped Go constant (int or float),
    None for an unsigned integer past int64 (Go's ``IsUint`` alone: it "overflows int")."""

    pos: int
    text: str
    value: int | float | complex | None
    as_float: float | None

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode:
    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class IdentifierNode:
    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class VariableNode:
    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(slots=True)
class FieldNode:
    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + f for f in self.ident)


@dataclass(slots=True)
class ChainNode:
    pos: int
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode:
    pos: int
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(slots=True)
class PipeNode:
    pos: int
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class ActionNode:
    pos: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class BranchNode:
    """``if``, ``range`` or ``with`` (``kind``), with its body and optional ``else`` body."""

    pos: int
    kind: str
    pipe: PipeNode
    body: list[Node]
    else_body: list[Node] | None

    def __str__(self) -> str:
        body = "".join(str(n) for n in self.body)
        out = "{{" + self.kind + " " + str(self.pipe) + "}}" + body
        if self.else_body is not None:
            out += "{{else}}" + "".join(str(n) for n in self.else_body)
        return out + "{{end}}"


@dataclass(slots=True)
class TemplateNode:
    pos: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        from promlab.rules.template.gofmt import quote

        if self.pipe is None:
            return "{{template " + quote(self.name) + "}}"
        return "{{template " + quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass(slots=True)
class BreakNode:
    pos: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class ContinueNode:
    pos: int

    def __str__(self) -> str:
        return "{{continue}}"


Node = (TextNode | DotNode | NilNode | BoolNode | NumberNode | StringNode | IdentifierNode
        | VariableNode | FieldNode | ChainNode | CommandNode | PipeNode | ActionNode | BranchNode
        | TemplateNode | BreakNode | ContinueNode)
