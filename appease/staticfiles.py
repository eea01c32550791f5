"""Static files in production: WhiteNoise's compressed, content-hashed storage
(docs/deploy.md, "Static files").

`collectstatic` writes every file twice, under its own name and under a name with a hash
of its content (`app.3f1c….css`), each gzipped too, and a manifest of the hashed names;
`{% static %}` then links the hashed name, which WhiteNoise serves as cacheable for good.
A name missing from the manifest (collectstatic not run, or run before the file existed)
links the plain name and logs a warning, instead of making every page that uses it a 500.
"""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            logger.warning("Static file %s is not in the manifest: run `deploy/entrypoint.sh release`.", name)
            return name
