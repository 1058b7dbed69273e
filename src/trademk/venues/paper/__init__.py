"""The paper venue: a matching engine against the latest-price cache, with its own account.

``PaperVenue`` implements ``ExecutionClient`` and passes the shared execution
contract suite. Matching conventions are documented in ``matching``, the
buying-power rule in ``buying_power``, DAY expiry in ``sessions`` and fee
models in ``fees``.
"""

from trademk.venues.paper.fees import NO_FEE, BpsFee, FeeModel, PerShareFee
from trademk.venues.paper.sessions import DayEnd, SessionDayEnd, next_utc_midnight
from trademk.venues.paper.venue import PAPER_VENUE, PaperVenue

__all__ = [
    "NO_FEE",
    "PAPER_VENUE",
    "BpsFee",
    "DayEnd",
    "FeeModel",
    "PaperVenue",
    "PerShareFee",
    "SessionDayEnd",
    "next_utc_midnight",
]
