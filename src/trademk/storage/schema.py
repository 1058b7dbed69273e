"""The complete app-database schema: importing this registers every model module.

Migrations and the schema-drift check use ``metadata`` from here, so a model
module that is not imported below is invisible to them.
"""

from __future__ import annotations

from trademk.storage import alert_models, auth_models, models, strategy_models
from trademk.storage.models import Base

MODEL_MODULES = (models, auth_models, alert_models, strategy_models)

metadata = Base.metadata
