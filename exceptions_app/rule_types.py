"""Rule expressions typed against a use case's data contract, at save time.

CEL does not convert between types: ``confidence < "0.9"`` compiles, then fails on every
decision, and the failed rule sends everything to review without anyone noticing. The
``cel`` package has no checker with declarations (it compiles and evaluates only), so
this module parses the expression itself and infers the type of each part from what the
rules see: ``confidence`` a number, ``model_version`` text, ``meta`` any object, and
``input`` / ``output`` typed by the use case's JSON Schemas (every JSON number reaches
the rules as a double, ``policy._as_cel_value``).

It refuses what cannot work on any decision: comparing or combining values of different
kinds (a number with text, a whole-number literal with a JSON number in arithmetic),
a field the schema does not declare, a function CEL here does not have, a rule whose
result is not true or false. Whatever it cannot type is ``dyn`` and passes: it never
refuses a rule the runtime would accept on some decision, except a field the contract
does not name (most often a typo: ``input.ammount``).

It runs when a draft is saved or proposed and, through the editor's live check, once per
pause in typing: about 60 µs per rule, 240 µs with the compile and cost checks before it
(the demo's six rules, on a shared 2-core machine at load average 6).
"""

import re
from dataclasses import dataclass, field

from exceptions_app.models import UseCase
from exceptions_app.policy import check_rule

# -- types ---------------------------------------------------------------------------------

NUMBERS = ("int", "uint", "double")
WORDS = {"int": "a whole number", "uint": "a whole number", "double": "a number",
         "string": "text", "bool": "true or false", "bytes": "bytes", "null": "null",
         "list": "a list", "map": "an object", "timestamp": "a timestamp",
         "duration": "a duration", "type": "a type"}


@dataclass(frozen=True)
class Type:
    kind: str  # one of WORDS' keys, or "dyn": anything
    schema: dict | None = field(default=None, compare=False)  # a map's JSON Schema
    element: "Type | None" = field(default=None, compare=False)  # a list's items
    where: str = field(default="", compare=False)  # "the input schema": for messages

    @property
    def words(self) -> str:
        return WORDS.get(self.kind, "any value")


DYN = Type("dyn")
BOOL, INT, UINT, DOUBLE = Type("bool"), Type("int"), Type("uint"), Type("double")
STRING, BYTES, NULL = Type("string"), Type("bytes"), Type("null")
ANY_OBJECT = Type("map")


def from_schema(schema, *, where: str) -> Type:
    """The CEL type a JSON Schema's values reach the rules as."""
    if not isinstance(schema, dict):
        return DYN
    declared = schema.get("type")
    if isinstance(declared, list):
        kinds = [kind for kind in declared if kind != "null"]
        declared = kinds[0] if len(kinds) == 1 else None
    if declared is None:
        values = schema["enum"] if isinstance(schema.get("enum"), list) else (
            [schema["const"]] if "const" in schema else None)
        if values:
            kinds = {_json_kind(value) for value in values}
            declared = kinds.pop() if len(kinds) == 1 else None
        elif "properties" in schema:
            declared = "object"
    return {
        "number": DOUBLE, "integer": DOUBLE, "string": STRING, "boolean": BOOL,
        "null": NULL,
        "object": Type("map", schema=schema, where=where),
        "array": Type("list", element=from_schema(schema.get("items"), where=where)),
    }.get(declared, DYN)


def _json_kind(value) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


@dataclass(frozen=True)
class Contract:
    """What each rule variable is, for one use case."""

    variables: dict

    @classmethod
    def of(cls, use_case: UseCase | None) -> "Contract":
        input_schema = use_case.input_schema if use_case else None
        output_schema = use_case.output_schema if use_case else None
        return cls(variables={
            "input": from_schema(input_schema, where="the input schema")
            if input_schema else ANY_OBJECT,
            "output": from_schema(output_schema, where="the output schema")
            if output_schema else ANY_OBJECT,
            "confidence": DOUBLE,
            "model_version": STRING,
            "meta": ANY_OBJECT,
        })


# -- parsing -------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>[rR]?[bB]?[rR]?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''
                                |"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
""", re.VERBOSE)


class _Unparsed(Exception):
    """Syntax this small parser does not know: the rule is left to the runtime."""


@dataclass
class Node:
    kind: str  # literal, name, field, call, index, unary, binary, choice, list, map
    start: int
    end: int
    value: object = None  # a literal's Type, a name, an operator, a field or function name
    parts: list = field(default_factory=list)
    target: "Node | None" = None  # a method call's receiver, a field's object
    at: int = -1  # an operator's offset: where a refusal points


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise _Unparsed(position)
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup, match.group(), match.start(), match.end()))
            position = match.end()
        self.at = 0

    def peek(self, *values) -> bool:
        if self.at >= len(self.tokens):
            return False
        kind, value, _, _ = self.tokens[self.at]
        return value in values and kind in ("op", "name")

    def take(self):
        if self.at >= len(self.tokens):
            raise _Unparsed(len(self.text))
        self.at += 1
        return self.tokens[self.at - 1]

    def expect(self, value: str):
        if not self.peek(value):
            raise _Unparsed(self.at)
        return self.take()

    def parse(self) -> Node:
        node = self.choice()
        if self.at != len(self.tokens):
            raise _Unparsed(self.at)
        return node

    def choice(self) -> Node:
        condition = self.binary(0)
        if self.peek("?"):
            self.take()
            yes = self.binary(0)
            self.expect(":")
            no = self.choice()
            return Node("choice", condition.start, no.end, parts=[condition, yes, no])
        return condition

    LEVELS = (("||",), ("&&",), ("<", "<=", ">", ">=", "==", "!=", "in"), ("+", "-"),
              ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek(*self.LEVELS[level]):
            _, op, at, _ = self.take()
            right = self.binary(level + 1)
            left = Node("binary", left.start, right.end, value=op, parts=[left, right], at=at)
        return left

    def unary(self) -> Node:
        if self.peek("!", "-"):
            _, op, start, _ = self.take()
            operand = self.unary()
            if op == "-" and operand.kind == "literal" and operand.value.kind in NUMBERS:
                return Node("literal", start, operand.end, value=operand.value)
            return Node("unary", start, operand.end, value=op, parts=[operand])
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.peek("."):
                self.take()
                kind, name, start, end = self.take()
                if kind != "name":
                    raise _Unparsed(start)
                if self.peek("("):
                    args, end = self.arguments(")")
                    node = Node("call", node.start, end, value=name, parts=args, target=node)
                else:
                    node = Node("field", node.start, end, value=name, target=node)
            elif self.peek("["):
                self.take()
                index = self.choice()
                _, _, _, end = self.expect("]")
                node = Node("index", node.start, end, parts=[index], target=node)
            else:
                return node

    def arguments(self, closing: str) -> tuple[list[Node], int]:
        self.take()
        args = []
        while not self.peek(closing):
            args.append(self.choice())
            if not self.peek(closing):
                self.expect(",")
        _, _, _, end = self.take()
        return args, end

    def primary(self) -> Node:
        kind, value, start, end = self.take()
        if kind == "string":
            return Node("literal", start, end, value=BYTES if "b" in value[:3].lower() else STRING)
        if kind == "number":
            if value[-1] in "uU":
                literal = UINT
            elif value.lower().startswith("0x") or not re.search(r"[.eE]", value):
                literal = INT
            else:
                literal = DOUBLE
            return Node("literal", start, end, value=literal)
        if kind == "name":
            if value in ("true", "false"):
                return Node("literal", start, end, value=BOOL)
            if value == "null":
                return Node("literal", start, end, value=NULL)
            if self.peek("("):
                args, end = self.arguments(")")
                return Node("call", start, end, value=value, parts=args)
            return Node("name", start, end, value=value)
        if value == "(":
            inner = self.choice()
            self.expect(")")
            return inner
        if value == "[":
            items, end = self.arguments_after(start, "]")
            return Node("list", start, end, parts=items)
        if value == "{":
            self.at -= 1
            return self.map_literal()
        raise _Unparsed(start)

    def arguments_after(self, start: int, closing: str) -> tuple[list[Node], int]:
        self.at -= 1
        return self.arguments(closing)

    def map_literal(self) -> Node:
        _, _, start, _ = self.take()
        parts = []
        while not self.peek("}"):
            parts.append(self.choice())
            self.expect(":")
            parts.append(self.choice())
            if not self.peek("}"):
                self.expect(",")
        _, _, _, end = self.take()
        return Node("map", start, end, parts=parts)


# -- checking ------------------------------------------------------------------------------

class RuleTypeError(Exception):
    def __init__(self, message: str, *, offset: int):
        super().__init__(message)
        self.offset = offset


# The functions the cel package has (its Rust core; ``cel.stdlib`` is not enabled here).
STRING_PREDICATES = ("contains", "startsWith", "endsWith", "matches")
CONVERSIONS = {"int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bytes": BYTES,
               "timestamp": Type("timestamp"), "duration": Type("duration"), "dyn": DYN,
               "type": Type("type")}
TIME_PARTS = ("getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
              "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds")
MACROS = ("all", "exists", "exists_one", "map", "filter")
TYPE_NAMES = ("int", "uint", "double", "string", "bool", "bytes", "list", "map",
              "null_type", "type")


class _Checker:
    def __init__(self, text: str, contract: Contract):
        self.text = text
        self.contract = contract

    def source(self, node: Node) -> str:
        return self.text[node.start:node.end]

    def fail(self, message: str, node: Node, offset: int | None = None):
        raise RuleTypeError(message, offset=node.start if offset is None else offset)

    def type_of(self, node: Node, scope: dict) -> Type:
        method = getattr(self, f"_{node.kind}")
        return method(node, scope)

    def _literal(self, node, scope):
        return node.value

    def _name(self, node, scope):
        if node.value in scope:
            return scope[node.value]
        if node.value in self.contract.variables:
            return self.contract.variables[node.value]
        if node.value in TYPE_NAMES:
            return Type("type")
        self.fail(f"Unknown name '{node.value}': a rule can use "
                  f"{', '.join(self.contract.variables)} (for example input.{node.value}).",
                  node)

    def _list(self, node, scope):
        kinds = {self.type_of(item, scope) for item in node.parts}
        return Type("list", element=kinds.pop() if len(kinds) == 1 else DYN)

    def _map(self, node, scope):
        for part in node.parts:
            self.type_of(part, scope)
        return ANY_OBJECT

    def _field(self, node, scope):
        return self.field_type(self.type_of(node.target, scope), node.value, node)

    def field_type(self, of: Type, name: str, node: Node, *, offset: int | None = None) -> Type:
        if of.kind == "dyn":
            return DYN
        if of.kind != "map":
            self.fail(f"'{self.source(node.target)}' is {of.words}, which has no field "
                      f"'{name}'.", node)
        schema = of.schema
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            return DYN
        properties = schema["properties"]
        if name in properties:
            return from_schema(properties[name], where=of.where)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return from_schema(extra, where=of.where)
        known = ", ".join(properties) or "none"
        self.fail(f"{of.where} has no field '{name}' in '{self.source(node)}' "
                  f"(its fields: {known}).", node,
                  offset=node.end - len(name) if offset is None else offset)

    def _index(self, node, scope):
        of = self.type_of(node.target, scope)
        index = node.parts[0]
        index_type = self.type_of(index, scope)
        if of.kind == "list":
            if index_type.kind not in ("int", "uint", "dyn"):
                self.fail(f"A list is indexed by a whole number, not {index_type.words}: "
                          f"'{self.source(node)}'.", index)
            return of.element or DYN
        if of.kind == "map" and index.kind == "literal" and index_type.kind == "string":
            return self.field_type(of, self.source(index)[1:-1], node, offset=index.start + 1)
        if of.kind in ("map", "dyn"):
            return DYN
        self.fail(f"'{self.source(node.target)}' is {of.words}; it cannot be indexed.", node)

    def _unary(self, node, scope):
        operand = self.type_of(node.parts[0], scope)
        if node.value == "!":
            self.expect_bool(operand, node.parts[0], "'!' (not) takes true or false")
            return BOOL
        if operand.kind not in (*NUMBERS, "duration", "dyn"):
            self.fail(f"'-' takes a number, and '{self.source(node.parts[0])}' is "
                      f"{operand.words}.", node)
        return operand

    def expect_bool(self, found: Type, node: Node, what: str) -> None:
        if found.kind not in ("bool", "dyn"):
            self.fail(f"{what}, and '{self.source(node)}' is {found.words}.", node)

    def _choice(self, node, scope):
        condition, yes, no = (self.type_of(part, scope) for part in node.parts)
        self.expect_bool(condition, node.parts[0], "The condition before '?' must be true or false")
        return yes if yes == no else DYN

    def _binary(self, node, scope):
        op = node.value
        left_node, right_node = node.parts
        left, right = self.type_of(left_node, scope), self.type_of(right_node, scope)
        where = node.at
        if op in ("&&", "||"):
            for side, side_node in ((left, left_node), (right, right_node)):
                self.expect_bool(side, side_node, f"'{op}' joins conditions that are true or false")
            return BOOL
        if "dyn" in (left.kind, right.kind) and op != "in":
            return BOOL if op in ("<", "<=", ">", ">=", "==", "!=") else DYN
        if op in ("==", "!="):
            if NULL in (left, right) or _comparable(left, right):
                return BOOL
            self.fail(self.mismatch(node, left, right, "compares",
                                    "They are never equal." if op == "==" else
                                    "They always differ."),
                      node, where)
        if op in ("<", "<=", ">", ">="):
            if _comparable(left, right) and left.kind not in ("list", "map", "null", "type"):
                return BOOL
            self.fail(self.mismatch(node, left, right, "compares",
                                    "The comparison fails on every decision."), node, where)
        if op == "in":
            if right.kind == "list":
                element = right.element or DYN
                if "dyn" in (left.kind, element.kind) or _comparable(left, element):
                    return BOOL
                self.fail(f"'{self.source(left_node)}' is {left.words}, and the list "
                          f"'{self.source(right_node)}' holds {element.words}: it is never in it.",
                          node, where)
            if right.kind == "map":
                if left.kind in ("string", "dyn"):
                    return BOOL
                self.fail(f"'in' asks an object for a key, which is text, and "
                          f"'{self.source(left_node)}' is {left.words}.", node, where)
            if right.kind == "dyn":
                return BOOL
            self.fail(f"'in' looks into a list or an object, and '{self.source(right_node)}' "
                      f"is {right.words}.", node, where)
        return self.arithmetic(op, node, left_node, left, right_node, right)

    def arithmetic(self, op, node, left_node, left, right_node, right) -> Type:
        kinds = (left.kind, right.kind)
        time = {("+", "timestamp", "duration"): "timestamp",
                ("+", "duration", "timestamp"): "timestamp",
                ("+", "duration", "duration"): "duration",
                ("-", "timestamp", "timestamp"): "duration",
                ("-", "timestamp", "duration"): "timestamp",
                ("-", "duration", "duration"): "duration"}.get((op, *kinds))
        if time:
            return Type(time)
        allowed = {"+": (*NUMBERS, "string", "bytes", "list"), "-": NUMBERS, "*": NUMBERS,
                   "/": NUMBERS, "%": ("int", "uint")}[op]
        if left.kind == right.kind and left.kind in allowed:
            return left if left.kind != "list" else Type("list", element=DYN)
        if left.kind in NUMBERS and right.kind in NUMBERS:
            if op == "%":
                self.fail(f"'%' takes whole numbers, and '{self.source(node)}' has a decimal "
                          f"one (JSON numbers reach the rules as decimals).", node, node.at)
            literal = next((side for side, kind in ((left_node, left.kind),
                                                    (right_node, right.kind))
                            if side.kind == "literal" and kind == "int"), None)
            advice = (f" Write the number with a decimal point: {self.source(literal)}.0"
                      if literal is not None else " Convert one side with double(...).")
            self.fail(f"'{self.source(node)}' mixes a whole number with a decimal one, which "
                      f"CEL does not do (JSON numbers reach the rules as decimals).{advice}",
                      node, node.at)
        self.fail(self.mismatch(node, left, right, f"applies '{op}' to",
                                "It fails on every decision."), node, node.at)

    def mismatch(self, node, left, right, verb: str, consequence: str) -> str:
        left_node, right_node = node.parts
        message = (f"'{self.source(node)}' {verb} {left.words} ({self.source(left_node)}) "
                   f"and {right.words} ({self.source(right_node)}). {consequence}")
        for quoted, other in ((right_node, left), (left_node, right)):
            text = self.source(quoted)
            if (quoted.kind == "literal" and quoted.value == STRING and other.kind in NUMBERS
                    and re.fullmatch(r"[rR]?[\"']-?\d+(\.\d+)?[\"']", text)):
                message += f" Write the number without quotes: {text.strip('rR')[1:-1]}."
        return message

    def _call(self, node, scope):
        name = node.value
        if node.target is None and name == "has":
            if len(node.parts) != 1 or node.parts[0].kind != "field":
                self.fail("has() takes one field, like has(input.vendor).", node)
            self.type_of(node.parts[0], scope)
            return BOOL
        if node.target is not None and name in MACROS:
            return self.macro(node, scope)
        args = [self.type_of(arg, scope) for arg in node.parts]
        receiver = self.type_of(node.target, scope) if node.target is not None else None
        if receiver is not None:
            args = [receiver, *args]
        if name == "size":
            if args and args[0].kind not in ("string", "bytes", "list", "map", "dyn"):
                self.fail(f"size() counts text, a list or an object's keys, and "
                          f"'{self.source(node.target or node.parts[0])}' is {args[0].words}.",
                          node)
            return INT
        if name in STRING_PREDICATES:
            for found, part in zip(args, [node.target, *node.parts], strict=False):
                if part is not None and found.kind not in ("string", "dyn"):
                    self.fail(f"{name}() works on text, and '{self.source(part)}' is "
                              f"{found.words}.", node)
            return BOOL
        if name in CONVERSIONS and node.target is None:
            return CONVERSIONS[name]
        if name in TIME_PARTS:
            return INT
        self.fail(f"CEL here has no function '{name}' (it has size, contains, startsWith, "
                  f"endsWith, matches, int, uint, double, string, timestamp, duration, has "
                  f"and the list macros all, exists, exists_one, map, filter).", node)

    def macro(self, node, scope):
        of = self.type_of(node.target, scope)
        if len(node.parts) not in (2, 3) or node.parts[0].kind != "name":
            self.fail(f"{node.value}() takes a name and a condition, like "
                      f"{node.value}(item, item.amount > 0.0).", node)
        if of.kind not in ("list", "map", "dyn"):
            self.fail(f"{node.value}() loops over a list or an object's keys, and "
                      f"'{self.source(node.target)}' is {of.words}.", node)
        item = (of.element or DYN) if of.kind == "list" else (STRING if of.kind == "map" else DYN)
        inner = {**scope, node.parts[0].value: item}
        bodies = [self.type_of(body, inner) for body in node.parts[1:]]
        if node.value in ("all", "exists", "exists_one", "filter") or len(bodies) == 2:
            self.expect_bool(bodies[0], node.parts[1],
                             f"{node.value}()'s condition must be true or false")
        if node.value == "filter":
            return Type("list", element=item)
        if node.value == "map":
            return Type("list", element=bodies[-1])
        return BOOL


def _comparable(left: Type, right: Type) -> bool:
    if left.kind in NUMBERS and right.kind in NUMBERS:
        return True
    return left.kind == right.kind


def problems(expression: str, *, contract: Contract) -> list[str]:
    """What makes ``expression`` fail on every decision of the contract, in words with the
    line and column; [] when nothing does (or this parser cannot read it: the runtime's
    own checks still apply)."""
    try:
        tree = _Parser(expression).parse()
    except (_Unparsed, IndexError):
        return []
    checker = _Checker(expression, contract)
    try:
        result = checker.type_of(tree, {})
        if result.kind not in ("bool", "dyn"):
            raise RuleTypeError(
                f"A rule must be true or false, and '{expression.strip()}' is "
                f"{result.words}; compare it with something, like "
                f"'{expression.strip()} > 0.0'.", offset=tree.start)
    except RuleTypeError as refused:
        line = expression.count("\n", 0, refused.offset) + 1
        column = refused.offset - (expression.rfind("\n", 0, refused.offset) + 1) + 1
        return [f"line {line}, column {column}: {refused}"]
    return []


def rule_problems(expression: str, *, use_case: UseCase | None) -> list[str]:
    """Everything saving a draft would say of this one expression: its syntax, its cost,
    its names, then its types against ``use_case``'s contract."""
    try:
        check_rule(expression)
    except ValueError as exc:
        return [str(exc)]
    return problems(expression, contract=Contract.of(use_case))


@dataclass(frozen=True)
class RuleVariable:
    """One name a rule may read, for the editor's reference: ``input.vendor``, text."""

    path: str
    words: str
    title: str = ""
    fields: tuple["RuleVariable", ...] = ()  # a list's items' fields, as ``item.<field>``


def variables_of(use_case: UseCase | None) -> list[RuleVariable]:
    """The rule variables and, from the data contract, the fields of input and output."""
    contract = Contract.of(use_case)
    found = [RuleVariable("confidence", DOUBLE.words, "The AI's confidence, 0 to 1"),
             RuleVariable("model_version", STRING.words, "The model version it posted"),
             RuleVariable("meta", ANY_OBJECT.words, "Anything the AI system sent along; no "
                                                    "contract, so any field may be read")]
    for name in ("input", "output"):
        kind = contract.variables[name]
        properties = (kind.schema or {}).get("properties") if kind.kind == "map" else None
        if not isinstance(properties, dict):
            found.append(RuleVariable(name, kind.words, f"The decision's {name}; no contract, "
                                                        f"so any field may be read"))
            continue
        for field_name, schema in properties.items():
            typed = from_schema(schema, where="")
            items = schema.get("items") if isinstance(schema, dict) else None
            item_fields = items.get("properties") if isinstance(items, dict) else None
            found.append(RuleVariable(
                f"{name}.{field_name}",
                f"a list of {typed.element.words}" if typed.kind == "list" and typed.element
                else typed.words,
                schema.get("title", "") if isinstance(schema, dict) else "",
                tuple(RuleVariable(f"item.{inner}", from_schema(inner_schema, where="").words,
                                   inner_schema.get("title", "")
                                   if isinstance(inner_schema, dict) else "")
                      for inner, inner_schema in (item_fields or {}).items())))
    return found
