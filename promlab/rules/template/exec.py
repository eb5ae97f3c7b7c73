"""The executor: walks a parsed template with Go text/template's semantics (``missingkey=zero``,
as Prometheus runs it) and reports errors the way Go does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from promlab.rules.template.funcs import FUNCS, TYPE_NAMES, CallError, Func
from promlab.rules.template.gofmt import format_value, quote
from promlab.rules.template.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
)
from promlab.rules.template.parser import Tree
from promlab.rules.template.values import (
    AlertData,
    AnyMap,
    GoDuration,
    GoTime,
    QueryResult,
    Sample,
    go_type,
    truth,
)

__all__ = ["ExecFailure", "State"]

MAX_DEPTH = 1000  # Go allows 100000 nested template calls; Python's stack does not.
GO_MAX_DEPTH = 100_000
_MISSING = object()


class ExecFailure(Exception):
    """An execution error: Go's message, the node it happened at and the template executing."""

    def __init__(self, message: str, node: Any, template: str) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.template = template


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_TYPE_CHECK: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "float64": lambda v: isinstance(v, float),
    "sample": lambda v: isinstance(v, Sample),
    "qr": lambda v: isinstance(v, QueryResult),
}


class State:
    """One execution of a tree: output, variable stack and the context functions read."""

    def __init__(self, tree: Tree, name: str, *, query_func: Callable[[str, int], Any] | None,
                 timestamp_ms: int, external_url: str) -> None:
        self.tree = tree
        self.template = name
        self.top = name
        self.query_func = query_func
        self.timestamp_ms = timestamp_ms
        self.external_url = external_url
        self.out: list[str] = []
        self.vars: list[list[Any]] = []
        self.node: Any = None
        self.depth = 0
        self.calls: list[TemplateNode] = []  # the template node walked at each depth
        self.deepest: list[TemplateNode] = []  # the calls when Python's stack ran out

    def depth_failure(self) -> ExecFailure | None:
        """Go's "exceeded maximum template depth" where Go meets it, at depth 100000: the
        calls seen before Python's stack (or MAX_DEPTH) ran out are taken to repeat with
        their shortest period; None when no template call was under way."""
        seq = self.deepest or self.calls
        if not seq:
            return None
        last = len(seq) - 1
        period = next((p for p in range(1, len(seq) // 3 + 1)
                       if all(seq[-k] is seq[-k - p] for k in range(1, 2 * p + 1))), 0)
        at = last - (last - GO_MAX_DEPTH) % period if period else last
        caller = seq[at - 1].name if at > 0 else self.top
        return ExecFailure(f"exceeded maximum template depth ({GO_MAX_DEPTH})", seq[at], caller)

    def fail(self, message: str) -> ExecFailure:
        return ExecFailure(message, self.node, self.template)

    def run(self, data: Any) -> str:
        self.vars = [["$", data]]
        self.walk_list(data, self.tree.root)
        return "".join(self.out)

    # --- statements --------------------------------------------------------------------------
    def walk_list(self, dot: Any, nodes: list[Node]) -> None:
        for n in nodes:
            self.walk(dot, n)

    def walk(self, dot: Any, node: Node) -> None:
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append("<no value>" if val is None else format_value(val))
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if truth(val):
                self.walk_list(val if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk_list(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            inner = len(self.vars)
            items: list[tuple[Any, Any]]
            if isinstance(val, list):
                items = list(enumerate(val))
            elif isinstance(val, dict):
                items = [(k, val[k]) for k in sorted(val)]
            elif val is None:
                items = []
            else:
                raise self.fail(f"range can't iterate over {format_value(val)}")
            ndecl = len(node.pipe.decl)
            for k, v in items:
                if ndecl:
                    self.vars[-1][1] = v
                    if ndecl > 1:
                        self.vars[-2][1] = k
                try:
                    self.walk_list(v, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[inner:]
            if not items and node.else_body is not None:
                self.walk_list(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.node = node
        body = self.tree.defines.get(node.name)
        if body is None:
            raise self.fail(f"template {quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            self.calls.append(node)
            failure = self.depth_failure()
            assert failure is not None
            raise failure
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        saved = (self.vars, self.template)
        self.vars, self.template = [["$", new_dot]], node.name
        self.depth += 1
        self.calls.append(node)
        try:
            self.walk_list(new_dot, body)
        except RecursionError:
            if not self.deepest:
                self.deepest = self.calls.copy()
            raise
        finally:
            self.vars, self.template = saved
            self.depth -= 1
            del self.calls[self.depth:]

    # --- expressions -------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            self.node = first
            return self.eval_call(dot, FUNCS[first.name], cmd, first.name, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.fail("nil is not a command")
        return self.literal(first)

    def literal(self, node: Node) -> Any:
        if isinstance(node, BoolNode):
            return node.value
        if isinstance(node, NumberNode):
            if node.value is None:
                self.node = node
                raise self.fail(f"{node.text} overflows int")
            return node.value
        if isinstance(node, StringNode):
            return node.text
        raise AssertionError(node)  # pragma: no cover

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if args is not None and (len(args) > 1 or final is not _MISSING):
            raise self.fail(f"can't give argument to non-function {args[0]}")

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        value = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node.ident[1:], args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        if isinstance(node.node, NilNode):
            raise self.fail(f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, "any", node.node)  # errors point at its last node, as Go's
        return self.eval_field_chain(dot, receiver, node.fields, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, ident: list[str], args: list[Node] | None,
                         final: Any) -> Any:
        boxed = False  # an element of a map[string]interface{}: Go names its type interface {}
        for name in ident[:-1]:
            boxed_next = isinstance(receiver, AnyMap)
            receiver = self.eval_field(dot, name, None, _MISSING, receiver, boxed=boxed)
            boxed = boxed_next
        return self.eval_field(dot, ident[-1], args, final, receiver, boxed=boxed)

    def eval_field(self, dot: Any, name: str, args: list[Node] | None, final: Any, receiver: Any, *,
                   boxed: bool = False) -> Any:
        if receiver is None:
            return None
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(receiver, GoTime | GoDuration):
            try:
                params = receiver.method_params(name)
            except KeyError:
                raise self.fail(f"can't evaluate field {name} in type {'interface {}' if boxed else go_type(receiver)}") from None
            rest = args[1:] if args else []
            got = len(rest) + (final is not _MISSING)
            if got != len(params):
                raise self.fail(f"wrong number of args for {name}: want {len(params)} got {got}")
            argv = [self.eval_arg(dot, typ, a) for typ, a in zip(params, rest, strict=False)]
            if final is not _MISSING:
                argv.append(self.validate(final, params[-1]))
            return receiver.call(name, argv)
        if isinstance(receiver, AlertData | Sample):
            if name in type(receiver).__dataclass_fields__:
                if has_args:
                    raise self.fail(f"{name} has arguments but cannot be invoked as function")
                return getattr(receiver, name)
        elif isinstance(receiver, dict):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments")
            got = receiver.get(name, _MISSING)
            if got is _MISSING:
                return None if isinstance(receiver, AnyMap) else ""
            return got
        raise self.fail(f"can't evaluate field {name} in type {'interface {}' if boxed else go_type(receiver)}")

    def eval_call(self, dot: Any, fn: Func, node: CommandNode, name: str, args: list[Node] | None,
                  final: Any) -> Any:
        rest = args[1:] if args else []
        num_in = len(rest) + (final is not _MISSING)
        if fn.variadic is not None:
            if num_in < len(fn.params):
                raise self.fail(f"wrong number of args for {name}: want at least {len(fn.params)} got {len(rest)}")
        elif num_in != len(fn.params):
            raise self.fail(f"wrong number of args for {name}: want {len(fn.params)} got {num_in}")
        if name in ("and", "or"):
            v: Any = None
            for a in rest:
                v = self.eval_arg(dot, "value", a)
                if truth(v) == (name == "or"):
                    return v
            if final is not _MISSING:
                v = final
            return v
        argv: list[Any] = []
        for i, a in enumerate(rest):
            typ = fn.params[i] if i < len(fn.params) else fn.variadic
            argv.append(self.eval_arg(dot, typ or "any", a))
        if final is not _MISSING:
            typ = fn.params[len(rest)] if len(rest) < len(fn.params) else fn.variadic
            argv.append(self.validate(final, typ or "any"))
        try:
            return fn.impl(self, *argv)
        except CallError as e:
            self.node = node
            raise self.fail(f"error calling {name}: {e}") from None

    def eval_arg(self, dot: Any, typ: str, node: Node) -> Any:
        self.node = node
        if isinstance(node, DotNode):
            return self.validate(dot, typ)
        if isinstance(node, NilNode):
            if typ in ("any", "sample", "qr", "value"):  # Go's canBeNil takes reflect.Value too
                return None
            raise self.fail(f"cannot assign nil to {TYPE_NAMES[typ]}")
        if isinstance(node, FieldNode):
            return self.validate(self.eval_field_chain(dot, dot, node.ident, [node], _MISSING), typ)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, None, _MISSING), typ)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), typ)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_call(dot, FUNCS[node.name], CommandNode(node.pos, [node]), node.name, None, _MISSING), typ)
        if isinstance(node, ChainNode):
            return self.validate(self.eval_chain(dot, node, None, _MISSING), typ)
        if typ == "string":
            if isinstance(node, StringNode):
                return node.text
            raise self.fail(f"expected string; found {node}")
        if typ == "float64":
            if isinstance(node, NumberNode) and node.as_float is not None:
                return node.as_float
            raise self.fail(f"expected float; found {node}")
        if typ in ("any", "value"):
            return self.literal(node)
        raise self.fail(f"can't handle {node} for arg of type {TYPE_NAMES[typ]}")

    def validate(self, value: Any, typ: str) -> Any:
        if value is None:
            if typ in ("any", "value", "sample", "qr"):
                return None
            raise self.fail(f"invalid value; expected {TYPE_NAMES[typ]}")
        check = _TYPE_CHECK.get(typ)
        if check is not None and not check(value):
            raise self.fail(f"wrong type for value; expected {TYPE_NAMES[typ]}; got {go_type(value)}")
        return value

    # --- variables ---------------------------------------------------------------------------
    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise self.fail(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise self.fail(f"undefined variable: {name}")
