"""The predictions' settings (dbt vars) and the names other parts read them by: the table, the statuses.

Light on purpose (PyYAML and the standard library): the report and the audience files read these without
importing the models (numpy, scipy, pandas), which they do not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from rapport.core.config import PROJECT_ROOT

DBT_PROJECT_FILE = PROJECT_ROOT / "dbt_project" / "dbt_project.yml"
PREDICTIONS_TABLE = "marts.customer_predictions"
# `model` of a customer without predictions, saying why
INSUFFICIENT = "insufficient data"
NOT_CONVERGED = "fit did not converge"


@dataclass(frozen=True)
class PredictionConfig:
    min_buyers: int = 200  # fewer customers with a valid order: no fit
    churn_low_above: float = 0.7
    churn_high_below: float = 0.3
    horizon_days: float = 90.0
    clv_days: float = 365.0
    # the fit uses at most this many customers (a seeded sample): parameters from 50k customers are as
    # precise as anyone needs, and the fit's cost stays bounded (every customer is still scored)
    max_fit_customers: int = 50_000


def load_config(project_file: Any = DBT_PROJECT_FILE) -> PredictionConfig:
    """The prediction settings from the dbt project's vars (defaults where a var is absent)."""
    with open(project_file, encoding="utf-8") as fh:
        dbt_vars = (yaml.safe_load(fh) or {}).get("vars") or {}
    default = PredictionConfig()
    return PredictionConfig(
        min_buyers=int(dbt_vars.get("predictions_min_buyers", default.min_buyers)),
        churn_low_above=float(dbt_vars.get("churn_risk_low_above", default.churn_low_above)),
        churn_high_below=float(dbt_vars.get("churn_risk_high_below", default.churn_high_below)),
        max_fit_customers=int(dbt_vars.get("predictions_max_fit_customers", default.max_fit_customers)),
    )
