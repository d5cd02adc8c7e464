"""Request, response and error bodies of the scoring API (the contract in notes/TEAM.md,
"Serving").

Validation is strict where a silent coercion would score the wrong thing: a user id sent as a
string, an amount sent as a string or a boolean, a negative or non-finite amount, and a
timestamp without a timezone are refused with 422 naming the field and the reason.

Bounds keep every accepted value representable where the server stores it and exact in every
client: ``user_id`` is a Feast int64 entity key (the data's ids are positive) and a JSON number,
so it must lie in ``0 .. 2**53 - 1`` (I-JSON, RFC 7493: beyond it a JSON number is not exact in
JavaScript or in any parser that reads numbers as doubles; a validator comparing as doubles
took 2**63 - 1 + 192 for <= 2**63 - 1). ``event_timestamp`` becomes int64 nanoseconds since the
epoch (which only span 1677..2262): an RFC 3339 string whose year is 1970..2199 (as written).
The document states each bound (``maximum``, ``pattern``) and the server checks exactly those.
Out of range is a 422 for that request, never a failure of the batch it would have been scored
in.

The error bodies (``ErrorResponse``, ``ValidationErrorResponse``) and the readiness bodies
(``ReadyStatus``, ``NotReadyStatus``) are what the server sends; the OpenAPI document describes
the routes with them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from mlref.data.columns import CATEGORIES

# the categories the model's category code knows (mlref.features.transforms encodes exactly
# these; any other gets the unknown code, -1)
MODEL_CATEGORIES: tuple[str, ...] = CATEGORIES

USER_ID_MAX = 2**53 - 1  # exact as a JSON number everywhere (I-JSON); within Feast's int64
# far above any card transaction; keeps the amount (and log_amount) a plain finite float
AMOUNT_MAX = 1e9
EVENT_TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)  # inclusive
EVENT_TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive; int64 ns end in 2262
EVENT_TIME_RANGE = (
    f"{EVENT_TIME_MIN.isoformat().replace('+00:00', 'Z')} (inclusive) and "
    f"{EVENT_TIME_MAX.isoformat().replace('+00:00', 'Z')} (exclusive)"
)
# RFC 3339 date-time with an offset, years 1970..2199 as written: the document states it as a
# pattern (so a client or a test generator knows it), and the server checks the same pattern
# before parsing, so what it accepts is exactly what the document allows. The year is the
# written one: with any offset (< 24 h) the instant is still far inside what int64 ns hold.
EVENT_TIMESTAMP_PATTERN = (
    r"^(19[7-9][0-9]|20[0-9]{2}|21[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_EVENT_TIMESTAMP = re.compile(EVENT_TIMESTAMP_PATTERN)


def _event_time_string(value: Any) -> Any:
    """Only an RFC 3339 string of the documented shape and range goes on to be parsed (a
    number is not read as epoch seconds: the document says date-time). Python callers (the
    replay, batch scoring, tests) may pass an aware ``datetime`` (a pandas Timestamp is one),
    held to the same range; JSON can carry no such object, so the HTTP contract is unchanged."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PydanticCustomError("timezone_aware", "Input should have timezone info")
        if not 1970 <= value.year <= 2199:
            raise PydanticCustomError(
                "event_time_out_of_range",
                "Input should be between {range}; send the time the transaction happened",
                {"range": EVENT_TIME_RANGE},
            )
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "date_time_type",
            "Input should be an RFC 3339 date-time string with a timezone, e.g. "
            "2026-03-01T12:00:00Z",
        )
    if not _EVENT_TIMESTAMP.match(value):
        if _EVENT_TIMESTAMP.match(value + "Z"):  # pydantic's words for a naive time
            raise PydanticCustomError("timezone_aware", "Input should have timezone info")
        if _EVENT_TIMESTAMP.match("1970" + value[4:]):  # the shape is right, the year is not
            raise PydanticCustomError(
                "event_time_out_of_range",
                "Input should be between {range}; send the time the transaction happened",
                {"range": EVENT_TIME_RANGE},
            )
        raise PydanticCustomError(
            "date_time_format",
            "Input should be an RFC 3339 date-time with a timezone "
            "(YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)), year 1970..2199",
        )
    return value


def _whole_number(value: Any) -> Any:
    """A whole-number float (``32081.0``) is that integer, as JSON Schema's ``integer`` says;
    any other float, a string or a boolean still fails the strict integer check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Transaction(BaseModel):
    """One transaction to score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    user_id: Annotated[
        StrictInt,
        Field(
            ge=0,
            le=USER_ID_MAX,
            description="the card holder's id: an integer 0 .. 2**53 - 1 (a whole-number "
            "float such as 32081.0 is that integer)",
        ),
        BeforeValidator(_whole_number),
    ]
    amount: Annotated[
        float,
        Field(
            ge=0.0,
            le=AMOUNT_MAX,
            allow_inf_nan=False,
            strict=True,
            description="the amount in the card's currency: a finite number, 0 .. 1e9",
        ),
    ]
    merchant_category: Annotated[
        StrictStr,
        Field(min_length=1, max_length=64),
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "string",
                        "enum": list(MODEL_CATEGORIES),
                        "description": "a category the model was trained on",
                    },
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "description": "any other is scored as an unknown category and "
                        "flagged (unknown_category in the answer), not refused",
                    },
                ],
                "title": "Merchant Category",
                "description": f"one of {', '.join(MODEL_CATEGORIES)}; any other is scored "
                "as an unknown category and flagged (unknown_category in the answer)",
            }
        ),
    ]
    event_timestamp: Annotated[
        AwareDatetime,
        BeforeValidator(_event_time_string),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "pattern": EVENT_TIMESTAMP_PATTERN,
                "title": "Event Timestamp",
                "description": "RFC 3339 with a timezone offset, the year (as written) "
                "1970..2199; a number is refused, not read as epoch seconds",
            }
        ),
    ]


class BatchRequest(BaseModel):
    """Many transactions in one call; each is scored as if sent alone."""

    model_config = ConfigDict(extra="forbid")

    transactions: Annotated[list[Transaction], Field(min_length=1)]


class Prediction(BaseModel):
    transaction_id: str
    score: float = Field(description="fraud probability from the champion model")
    decision: bool = Field(description="score >= threshold: flag the transaction")
    threshold: float = Field(description="decision threshold from the model card")
    model_version: str
    unknown_user: bool = Field(
        description="no stored features for this user: scored on the documented defaults"
    )
    unknown_category: bool = Field(
        default=False,  # the benchmark floors (mlref.load) build this model without it
        description="merchant_category is not one the model was trained on "
        f"({', '.join(MODEL_CATEGORIES)}): scored as an unknown category, not refused; "
        "logged and counted (mlref_unknown_category_total)",
    )


class BatchResponse(BaseModel):
    predictions: list[Prediction]


# -- error and readiness bodies (what the handlers in mlref.serve.app send) -------------------


_REQUEST_ID = Field(
    description="this request's id (also the X-Request-ID header): the server log has the "
    "internal detail of an error under it"
)


class ErrorResponse(BaseModel):
    """Any error but a validation error: 400, 408, 413, 500, 503."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="what is wrong and what to do about it")
    request_id: str = _REQUEST_ID


class FieldError(BaseModel):
    """One invalid field of a request body."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        description="where in the body: 'amount', 'transactions[2].user_id', or 'body'"
    )
    reason: str = Field(description="what is wrong with it")
    type: str = Field(description="machine-readable error kind, e.g. 'greater_than_equal'")


class ValidationErrorResponse(BaseModel):
    """422: the body is JSON but not a valid request. The input is never echoed back."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="'invalid request: <field>: <reason>; ...'")
    errors: list[FieldError] = Field(min_length=1)
    request_id: str = _REQUEST_ID


class ReadyStatus(BaseModel):
    """/readyz 200: model and feature store loaded."""

    model_config = ConfigDict(extra="forbid")

    ready: Literal[True]
    model_version: str | None
    shadow_version: str | None


class NotReadyStatus(BaseModel):
    """/readyz 503: still loading, start-up failed, the feature store cannot be read, or
    shutting down."""

    model_config = ConfigDict(extra="forbid")

    ready: Literal[False]
    reason: str = Field(description="why, in words for a client (the cause is in the log)")


class HealthStatus(BaseModel):
    """/healthz: ``ok`` (200), or ``failed`` with the reason (503: restart the process)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "failed"]
    reason: str | None = None
