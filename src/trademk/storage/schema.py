"""The complete app-database schema: importing this registers every model module.

Migrations and the schema-drift check use ``metadata`` from here, so a model
module that is not imported below is invisible to them.
"""

from __future__ import annotations

from trademk.storage import models
from trademk.storage.models import Base

MODEL_MODULES = (models,)

metadata = Base.metadata
