import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appease.settings")

app = Celery("appease")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids travel with the tasks (task headers), in web and worker processes alike.
import appease.core.observability  # noqa: E402, F401


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs) -> None:
    """The file-system transport writes into folders it does not create itself.

    Runs once per process, when Celery first reads its configuration: in a web
    process before the first message is sent, in a worker before it starts consuming.
    """
    if not str(sender.conf.broker_url or "").startswith("filesystem:"):
        return
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
