"""The parser of Go's text/template grammar (actions, pipelines, ``if``/``range``/``with``/``else``,
``define``/``template``/``block``, ``break``/``continue``) into :mod:`.nodes`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promlab.rules.template.gofmt import quote
from promlab.rules.template.gonum import parse_float, parse_int, parse_uint
from promlab.rules.template.lexer import LexError, Token, lex
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

__all__ = ["ParseFailure", "Tree", "parse", "unquote"]

_OPERAND_START = frozenset({"bool", "charconst", "complex", ".", "field", "ident", "number", "nil", "rawstring",
                            "string", "var", "("})


class ParseFailure(Exception):
    """A parse error: Go's message and the offset whose line Go reports."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass(slots=True)
class Tree:
    """A parsed template: the top-level nodes and the templates it ``define``s."""

    root: list[Node]
    defines: dict[str, list[Node]] = field(default_factory=dict)


@dataclass(slots=True)
class _End:
    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _Else:
    pos: int
    chained: str = ""

    def __str__(self) -> str:
        return "{{else}}"


_ESCAPES = re.compile(r"\\(?:([abfnrtv\\\"])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def unquote(quoted: str) -> str:
    """Go's ``strconv.Unquote`` for ``"..."``, ```...``` and ``'c'``; ValueError("invalid syntax")."""
    if quoted[0] == "`":
        return quoted[1:-1].replace("\r", "")
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        j = body.find("\\", i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        if quoted[0] == "'" and body.startswith("\\'", j):
            out.append("'")
            i = j + 2
            continue
        m = _ESCAPES.match(body, j)
        if m is None:
            raise ValueError("invalid syntax")
        if m.group(1):
            out.append(_SIMPLE[m.group(1)])
        else:
            code = int(m.group(2) or m.group(4) or m.group(5) or "0", 16) if not m.group(3) else int(m.group(3), 8)
            if code > 0x10FFFF:
                raise ValueError("invalid syntax")
            out.append(chr(code))
        i = m.end()
    return "".join(out)


def _complex_node(pos: int, text: str, c: complex) -> NumberNode:
    # A complex constant with no imaginary part is also a float (and an int) to Go's typed
    # arguments; printed or compared untyped it stays complex128.
    return NumberNode(pos, text, c, c.real if c.imag == 0 else None)


def _number(tok: Token) -> NumberNode:
    text = tok.val
    if tok.kind == "charconst":
        try:
            s = unquote(text)
        except ValueError:
            raise ParseFailure("malformed character constant: " + text, tok.pos) from None
        if len(s) != 1:
            raise ParseFailure("malformed character constant: " + text, tok.pos)
        return NumberNode(tok.pos, text, ord(s), float(ord(s)))
    if tok.kind == "complex":
        # The real part, then the signed imaginary one (a sign after e or p is the exponent's).
        cut = max(j for j in range(1, len(text)) if text[j] in "+-" and text[j - 1] not in "eEpP")
        re_part, im_part = parse_float(text[:cut]), parse_float(text[cut:-1])
        if re_part is None or im_part is None:
            raise ParseFailure(f"illegal number syntax: {quote(text)}", tok.pos)
        return _complex_node(tok.pos, text, complex(re_part, im_part))
    if text.endswith("i") and (im := parse_float(text[:-1])) is not None:
        return _complex_node(tok.pos, text, complex(0.0, im))
    # As Go's parse.newNumber: an int if ParseInt or ParseUint takes it, else a float.
    iv = parse_int(text)
    if iv is not None:
        hexint = len(text) > 2 and text[0] == "0" and text[1] in "xX"
        if not hexint and any(c in text for c in ".eEpP"):
            return NumberNode(tok.pos, text, float(iv), float(iv))
        return NumberNode(tok.pos, text, iv, float(iv))
    uv = parse_uint(text)
    if uv is not None:
        # Past int64: a valid constant, only an int where one is needed fails.
        return NumberNode(tok.pos, text, None, float(uv))
    f = parse_float(text)
    if f is None:
        raise ParseFailure(f"illegal number syntax: {quote(text)}", tok.pos)
    if not any(c in text for c in ".eEpP"):
        raise ParseFailure(f"integer overflow: {quote(text)}", tok.pos)
    return NumberNode(tok.pos, text, f, f)


class _Parser:
    def __init__(self, toks: list[Token], funcs: frozenset[str]) -> None:
        self.toks = toks
        self.i = 0
        self.funcs = funcs
        self.vars = ["$"]
        self.range_depth = 0
        self.defines: dict[str, list[Node]] = {}

    # --- token stream ------------------------------------------------------------------------
    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind == "error":
            raise ParseFailure(t.val, t.pos)
        if self.i < len(self.toks) - 1:
            self.i += 1
        return t

    def peek(self) -> Token:
        t = self.toks[self.i]
        if t.kind == "error":
            raise ParseFailure(t.val, t.pos)
        return t

    def next_non_space(self) -> Token:
        t = self.next()
        while t.kind == "space":
            t = self.next()
        return t

    def peek_non_space(self) -> Token:
        t = self.next_non_space()
        if t.kind != "eof":
            self.i -= 1
        return t

    def backup(self) -> None:
        self.i -= 1

    def fail(self, message: str, pos: int | None = None) -> ParseFailure:
        return ParseFailure(message, self.toks[max(self.i - 1, 0)].pos if pos is None else pos)

    def unexpected(self, tok: Token, context: str) -> ParseFailure:
        return self.fail(f"unexpected {tok.describe()} in {context}", tok.pos)

    def expect(self, kind: str, context: str) -> Token:
        t = self.next_non_space()
        if t.kind != kind:
            raise self.unexpected(t, context)
        return t

    # --- structure ---------------------------------------------------------------------------
    def parse(self) -> Tree:
        root: list[Node] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "{{":
                start = self.i
                self.next()
                if self.next_non_space().kind == "define":
                    self.definition()
                    continue
                self.i = start
            n = self.text_or_action()
            if isinstance(n, _End | _Else):
                raise self.fail(f"unexpected {n}", n.pos)
            if n is not None:
                root.append(n)
        return Tree(root, self.defines)

    def definition(self) -> None:
        tok = self.next_non_space()
        if tok.kind not in ("string", "rawstring"):
            raise self.unexpected(tok, "define clause")
        name = unquote(tok.val)
        self.expect("}}", "define clause")
        body = self.sub_list(name, "define clause")
        self.add_define(name, body, tok.pos)

    def add_define(self, name: str, body: list[Node], pos: int) -> None:
        old = self.defines.get(name)
        if old is not None and any(not (isinstance(n, TextNode) and not n.text.strip()) for n in old):
            raise self.fail(f"template: multiple definition of template {quote(name)}", pos)
        self.defines[name] = body

    def sub_list(self, name: str, context: str) -> list[Node]:
        saved, depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved, depth
        if not isinstance(end, _End):
            raise self.fail(f"unexpected {end} in {context}", end.pos)
        return body

    def item_list(self) -> tuple[list[Node], _End | _Else]:
        body: list[Node] = []
        while self.peek_non_space().kind != "eof":
            n = self.text_or_action()
            if isinstance(n, _End | _Else):
                return body, n
            if n is not None:
                body.append(n)
        raise self.fail("unexpected EOF")

    def text_or_action(self) -> Node | _End | _Else | None:
        t = self.next_non_space()
        if t.kind == "text":
            return TextNode(t.pos, t.val)
        if t.kind == "{{":
            return self.action()
        raise self.unexpected(t, "input")

    def action(self) -> Node | _End | _Else:
        t = self.next_non_space()
        k = t.kind
        if k == "end":
            return _End(self.expect("}}", "end").pos)
        if k == "else":
            p = self.peek_non_space()
            if p.kind in ("if", "with"):
                return _Else(p.pos, p.kind)
            return _Else(self.expect("}}", "else").pos)
        if k in ("if", "range", "with"):
            return self.control(k, t.pos)
        if k in ("break", "continue"):
            nt = self.next_non_space()
            if nt.kind != "}}":
                raise self.unexpected(nt, "{{" + k + "}}")
            if self.range_depth == 0:
                raise self.fail("{{" + k + "}} outside {{range}}", t.pos)
            return BreakNode(t.pos) if k == "break" else ContinueNode(t.pos)
        if k in ("template", "block"):
            return self.template(k, t.pos)
        self.backup()
        return ActionNode(self.peek().pos, self.pipeline("command", "}}"))

    def control(self, kind: str, pos: int) -> BranchNode:
        nvars = len(self.vars)
        pipe = self.pipeline(kind, "}}")
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[Node] | None = None
        if isinstance(nxt, _Else):
            if nxt.chained and nxt.chained == kind and kind in ("if", "with"):
                t = self.next_non_space()
                else_body = [self.control(kind, t.pos)]
            else:
                if nxt.chained:
                    raise self.unexpected(self.next_non_space(), "input")
                else_body, end = self.item_list()
                if not isinstance(end, _End):
                    raise self.fail(f"expected end; found {end}", end.pos)
        del self.vars[nvars:]
        return BranchNode(pos, kind, pipe, body, else_body)

    def template(self, kind: str, pos: int) -> TemplateNode:
        context = kind + " clause"
        tok = self.next_non_space()
        if tok.kind not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        name = unquote(tok.val)
        pipe: PipeNode | None = None
        if kind == "block":
            pipe = self.pipeline(context, "}}")
            self.add_define(name, self.sub_list(name, context), tok.pos)
        elif self.next_non_space().kind != "}}":
            self.backup()
            pipe = self.pipeline(context, "}}")
        return TemplateNode(tok.pos, name, pipe)

    # --- pipelines ---------------------------------------------------------------------------
    def pipeline(self, context: str, end: str) -> PipeNode:
        pipe = PipeNode(self.peek_non_space().pos)
        while True:
            v = self.peek_non_space()
            if v.kind != "var":
                break
            start = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.kind in (":=", "="):
                pipe.is_assign = nxt.kind == "="
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
            elif nxt.kind == ",":
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("var", "}}", ")"):
                        continue
                    raise self.fail("range can only initialize variables")
                raise self.fail(f"too many declarations in {context}")
            else:
                self.i = start
            break
        while True:
            t = self.next_non_space()
            if t.kind == end:
                if not pipe.cmds:
                    raise self.fail(f"missing value for {context}", t.pos)
                for i, c in enumerate(pipe.cmds[1:]):
                    if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                        raise self.fail(f"non executable command in pipeline stage {i + 2}", t.pos)
                return pipe
            if t.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(t, context)

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            op = self.operand()
            if op is not None:
                cmd.args.append(op)
            t = self.next()
            if t.kind == "space":
                continue
            if t.kind in ("}}", ")"):
                self.backup()
            elif t.kind != "|":
                raise self.unexpected(t, "operand")
            break
        if not cmd.args:
            raise self.fail("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(pos, node.ident + fields)
        if isinstance(node, VariableNode):
            return VariableNode(pos, node.ident + fields)
        if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
            raise self.fail(f"unexpected . after term {quote(str(node))}")
        return ChainNode(pos, node, fields)

    def term(self) -> Node | None:
        t = self.next_non_space()
        k = t.kind
        if k == "ident":
            if t.val not in self.funcs:
                raise self.fail(f"function {quote(t.val)} not defined", t.pos)
            return IdentifierNode(t.pos, t.val)
        if k == ".":
            return DotNode(t.pos)
        if k == "nil":
            return NilNode(t.pos)
        if k == "var":
            if t.val not in self.vars:
                raise self.fail(f"undefined variable {quote(t.val)}", t.pos)
            return VariableNode(t.pos, [t.val])
        if k == "field":
            return FieldNode(t.pos, [t.val[1:]])
        if k == "bool":
            return BoolNode(t.pos, t.val == "true")
        if k in ("number", "charconst", "complex"):
            return _number(t)
        if k == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if k in ("string", "rawstring"):
            try:
                return StringNode(t.pos, t.val, unquote(t.val))
            except ValueError as e:
                raise self.fail(str(e), t.pos) from None
        self.backup()
        return None


def parse(text: str, funcs: frozenset[str]) -> Tree:
    """Parse ``text``; ``funcs`` are the function names that may be called.

    Raises
    ------
    ParseFailure
        With Go's message and the offset of the problem.
    """
    try:
        toks = lex(text)
    except LexError as e:
        raise ParseFailure(e.message, e.pos) from None
    return _Parser(toks, funcs).parse()
