"""Times as they leave the service: aware, in UTC, so JSON carries the offset.

Two naive forms exist inside: the tables store naive UTC (`db.utcnow`), and the
ChatKit SDK stamps the threads and items it makes with naive *local*
`datetime.now()`. A time written without an offset is read by JavaScript as the
viewer's local time, so nothing naive may reach a response.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

_ZERO = timedelta(0)


def sdk_time_to_utc(moment: datetime) -> datetime:
    """`moment` as aware UTC; naive means the server's local time, as the SDK makes it.

    An aware UTC value is returned as it is (no copy).
    """
    if moment.tzinfo is None:
        moment = moment.astimezone()
    elif moment.utcoffset() == _ZERO:
        return moment
    return moment.astimezone(UTC)


def _to_utc(moment: datetime) -> datetime:
    return moment if moment.utcoffset() == _ZERO else moment.astimezone(UTC)


# A time in a response model: must be aware (a naive one is a bug: local or UTC?),
# and is written in UTC (`...Z`).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
