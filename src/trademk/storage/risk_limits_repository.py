"""Risk limits in the ``configs`` table (scope ``risk``), one row per limit.

Values are stored as text (``"10000"``, ``"1.0"``, ``"true"``) so a Decimal
never passes through a float. Loading ignores keys it does not know (an older
or newer version may have written them) and falls back to ``RISK_DEFAULTS``
for keys that are missing; a stored value that does not parse raises
``RiskLimitsError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.risk import RISK_LIMIT_NAMES, RiskLimits, RiskLimitsError
from trademk.storage.database import transaction
from trademk.storage.models import ConfigEntry
from trademk.storage.seed import RISK_DEFAULTS, RISK_SCOPE, seed_config

_DEFAULT_VALUES: Mapping[str, str] = {d.key: d.value for d in RISK_DEFAULTS}
_DESCRIPTIONS: Mapping[str, str] = {d.key: d.description for d in RISK_DEFAULTS}


def _as_text(value: object) -> object:
    """A JSON value written by hand (number, boolean) as the text form limits parse.

    Strings pass through; anything else is left for ``RiskLimits`` to reject by name.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class RiskLimitsRepository:
    """Loads and saves :class:`RiskLimits` in the app database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load(self) -> RiskLimits:
        """The stored limits; missing keys take their ``RISK_DEFAULTS`` value."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ConfigEntry.key, ConfigEntry.value).where(
                        ConfigEntry.scope == RISK_SCOPE
                    )
                )
            ).all()
        values: dict[str, object] = dict(_DEFAULT_VALUES)
        values.update({key: _as_text(value) for key, value in rows if key in RISK_LIMIT_NAMES})
        try:
            return RiskLimits.from_mapping(values)
        except RiskLimitsError as err:
            raise RiskLimitsError(
                err.errors, f"stored risk limits (configs, scope {RISK_SCOPE!r}) are invalid"
            ) from err

    async def save(self, limits: RiskLimits) -> None:
        """Store every limit, in one transaction; rows of other keys are left alone."""
        wanted = limits.to_mapping()
        async with transaction(self._sessions) as session:
            existing = {
                row.key: row
                for row in await session.scalars(
                    select(ConfigEntry).where(
                        ConfigEntry.scope == RISK_SCOPE, ConfigEntry.key.in_(wanted)
                    )
                )
            }
            for key, value in wanted.items():
                row = existing.get(key)
                if row is None:
                    session.add(
                        ConfigEntry(
                            key=key,
                            value=value,
                            scope=RISK_SCOPE,
                            description=_DESCRIPTIONS.get(key),
                        )
                    )
                elif row.value != value:
                    row.value = value

    async def seed_defaults(self) -> int:
        """Insert the default of every limit that has no row yet; returns how many."""
        async with transaction(self._sessions) as session:
            return await seed_config(session, RISK_SCOPE, RISK_DEFAULTS)
