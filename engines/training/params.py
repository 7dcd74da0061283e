"""A kind's parameters: user values checked against its config dataclass (types by pydantic's
TypeAdapter, ranges by the dataclass's `__post_init__`), and the fields described for forms and
the API from their trailing `# comments`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import tokenize
import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError


def resolve_params(config_cls: type, params: dict[str, Any] | None) -> Any:
    """Build `config_cls` from user params: unknown names and wrong types raise ValueError."""
    params = dict(params or {})
    adapters = _field_adapters(config_cls)
    unknown = sorted(set(params) - set(adapters))
    if unknown:
        raise ValueError(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}. "
            f"Accepted: {', '.join(adapters)}."
        )
    values = {}
    for name, value in params.items():
        try:
            values[name] = adapters[name].validate_python(value)
        except ValidationError as exc:
            raise ValueError(_explain(name, value, exc, _hints(config_cls).get(name))) from None
    return config_cls(**values)  # __post_init__ may raise ValueError for out-of-range values


@functools.cache
def _hints(config_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(config_cls)


@functools.cache
def _field_adapters(config_cls: type) -> dict[str, TypeAdapter]:
    hints = _hints(config_cls)
    return {
        f.name: TypeAdapter(_no_bool_mixing(hints.get(f.name, Any)))
        for f in dataclasses.fields(config_cls)
        if f.init
    }


# pydantic's lax mode reads True as 1 and 1 as True; a parameter form wants neither (a checkbox
# sent for a step count is a mistake). Text is still read: "7" → 7, "true" → True.
def _refuse_bool(kind: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(kind, "a boolean is not a number")
        return value

    return BeforeValidator(check)


def _true_or_false(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PydanticCustomError("bool_type", "not true or false")


_SCALARS: dict[Any, Any] = {
    int: Annotated[int, _refuse_bool("int_type")],
    float: Annotated[float, _refuse_bool("float_type")],
    bool: Annotated[bool, BeforeValidator(_true_or_false)],
}


def _no_bool_mixing(tp: Any) -> Any:
    """`tp` with each int, float and bool inside it (optional, in a list) swapped for its strict form."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_no_bool_mixing(a) for a in args)]  # noqa: UP007 - built at runtime
    if origin in (list, tuple) and args:
        return list[_no_bool_mixing(args[0])]
    return tp


# pydantic error type → what the field must be, in the words the forms show
_MUST_BE = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list", "string_type": "text",
}  # fmt: skip


def _explain(name: str, value: Any, exc: ValidationError, hint: Any) -> str:
    """One sentence naming the field: "'steps' must be a whole number, not 1.5."."""
    errors = exc.errors()
    if len(errors) != 1:  # a union none of whose members fit
        return f"'{name}' has the wrong type: {value!r}"
    err = errors[0]
    if err["type"] == "literal_error":
        choices = next(typing.get_args(a) for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is Literal)
        return f"'{name}' must be one of {', '.join(repr(c) for c in choices)}, not {err['input']!r}."
    must_be = _MUST_BE.get(err["type"])
    if must_be is None:
        return f"'{name}': {err['msg']} (not {err['input']!r})."
    return f"'{name}' must be {must_be}, not {err['input']!r}."


def field_docs(config_cls: type) -> dict[str, str]:
    """Each field's trailing `# comment` in the dataclass source (or metadata["doc"])."""
    return dict(_field_docs(config_cls))


@functools.cache  # the source is read once per class: every studio's forms and API ask again
def _field_docs(config_cls: type) -> dict[str, str]:
    docs = {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(config_cls)}
    try:
        source = inspect.getsource(config_cls)
    except (OSError, TypeError):
        return docs
    pending: str | None = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NL or tok.type == tokenize.NEWLINE:
            pending = None
        elif tok.type == tokenize.NAME and pending is None and tok.start[1] > 0 and tok.string in docs:
            pending = tok.string if tok.line.strip().startswith(tok.string) else None
        elif tok.type == tokenize.COMMENT and pending and not docs[pending]:
            docs[pending] = tok.string.lstrip("#").strip()
            pending = None
    return docs


def describe_config(config_cls: type) -> list[dict[str, Any]]:
    """[{name, type, default, doc}] for forms and the API."""
    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    defaults = dataclasses.asdict(config_cls())
    return [
        {
            "name": f.name,
            "type": _type_name(hints.get(f.name, Any)),
            "default": defaults[f.name],
            "doc": docs.get(f.name, ""),
        }
        for f in dataclasses.fields(config_cls)
        if f.init
    ]


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
