"""Import the heavy libraries of the later stages in the background while the first ones run.

Evidently, Feast, MLflow and LightGBM take seconds each to import (Evidently alone was 12 s of a
loaded 2-core machine's drift check), and the first stages leave a core idle: the dbt build runs
in a subprocess while the pipeline process waits for its events. A daemon thread imports them
then, so the stage that needs a library finds it in ``sys.modules``. Python's import locks make a
module imported by two threads at once load once; a failed import here is ignored (the stage
that needs the module imports it again and reports the error where it belongs).
"""

from __future__ import annotations

import importlib
import threading

# in the order the stages need them (drift, Feast, the model, MLflow)
HEAVY_MODULES: tuple[str, ...] = (
    "evidently",
    "evidently.presets",
    "feast",
    "orchestration.core.model.learners",  # sets OpenMP's wait policy before LightGBM loads
    "mlflow",
    "mlflow.pyfunc",
)


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the stage that needs it reports the error
            continue


def warm_imports(modules: tuple[str, ...] = HEAVY_MODULES) -> threading.Thread:
    """Start importing ``modules`` in a daemon thread; returns the thread."""
    thread = threading.Thread(target=_import_all, args=(modules,), name="warm-imports", daemon=True)
    thread.start()
    return thread
