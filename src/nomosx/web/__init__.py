"""The web app served by ``nomosx serve``: pages (``routes.router``), their templates and
their static files (``routes.static_files()``, mounted at ``/static``)."""

from nomosx.web.routes import router, static_files

__all__ = ["router", "static_files"]
