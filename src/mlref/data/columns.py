"""The raw transaction event: column names and vocabularies every stage agrees on."""

from __future__ import annotations

TRANSACTION_ID = "transaction_id"  # str, unique, e.g. "t00000042"
USER_ID = "user_id"  # int64 entity key (Feast entity "user")
MERCHANT_ID = "merchant_id"  # int64
MERCHANT_CATEGORY = "merchant_category"  # str, one of CATEGORIES (DRIFT_CATEGORY when drifted)
AMOUNT = "amount"  # float64, in [0, 1_000_000]
EVENT_TIMESTAMP = "event_timestamp"  # datetime64[ns, UTC]
LABEL = "is_fraud"  # int8 0/1
LABEL_TIMESTAMP = "label_timestamp"  # datetime64[ns, UTC]: when the label became known

RAW_COLUMNS: tuple[str, ...] = (
    TRANSACTION_ID,
    USER_ID,
    MERCHANT_ID,
    MERCHANT_CATEGORY,
    AMOUNT,
    EVENT_TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
)

# Personal data a real card transaction carries (generate_transactions(pii=True)). Not part
# of RAW_COLUMNS: mlref.data.privacy drops them before validation, features, training sets
# and the prediction log, and the pii_scan gate checks that none got through.
CARD_NUMBER = "card_number"  # str, 16 digits, Luhn-valid (one card per user)
EMAIL = "email"  # str, the card holder's e-mail address
IP_ADDRESS = "ip_address"  # str, IPv4 the purchase came from
PII_COLUMNS: tuple[str, ...] = (CARD_NUMBER, EMAIL, IP_ADDRESS)

CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurant",
    "gas",
    "online",
    "travel",
    "electronics",
    "entertainment",
    "health",
)
# appears only when the generator's drift switch is on; validation accepts it
DRIFT_CATEGORY = "crypto"
KNOWN_CATEGORIES: tuple[str, ...] = (*CATEGORIES, DRIFT_CATEGORY)

# The sensitive attribute (group_parity, model-7): a per-user table from
# ``mlref.data.generate.user_age_bands``, joined on USER_ID for evaluation only; never a
# column of the event log and never a model input.
AGE_BAND = "age_band"  # str, one of AGE_BANDS
AGE_BANDS: tuple[str, ...] = ("18-29", "30-44", "45-64", "65+")
