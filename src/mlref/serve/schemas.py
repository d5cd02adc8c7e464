"""Request and response bodies of the scoring API (the contract in notes/TEAM.md, "Serving").

Validation is strict where a silent coercion would score the wrong thing: a user id sent as a
string, an amount sent as a string or a boolean, a negative or non-finite amount, and a
timestamp without a timezone are refused with 422 naming the field and the reason.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr


class Transaction(BaseModel):
    """One transaction to score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    user_id: StrictInt
    amount: Annotated[float, Field(ge=0.0, allow_inf_nan=False, strict=True)]
    merchant_category: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    event_timestamp: AwareDatetime


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


class BatchResponse(BaseModel):
    predictions: list[Prediction]
