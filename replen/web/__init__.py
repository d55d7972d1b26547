"""The planner page and the API docs, served from files shipped in the package (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from kernel.errors import NotFound
from replen.api.security import public

__all__ = ["STATIC", "router"]

STATIC = Path(__file__).parent / "static"
_MEDIA = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

router = APIRouter(include_in_schema=False, dependencies=[public()])


def _docs_assets() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def _file(folder: Path, name: str) -> FileResponse:
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file() or path.suffix not in _MEDIA:
        raise NotFound(f"no asset {name!r}")
    return FileResponse(path, media_type=_MEDIA[path.suffix], headers={"Cache-Control": "no-cache"})


@router.get("/")
def page() -> FileResponse:
    """The planner's page: a static file; it talks to the API with the signed-in token."""
    return FileResponse(
        STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    return _file(STATIC, name)


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> FileResponse:
    return _file(_docs_assets(), name)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Swagger UI with its script and style from this server."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title="Replen API",
        swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs-assets/favicon.png",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
    )


@router.get("/docs/oauth2-redirect")
def docs_oauth2_redirect() -> HTMLResponse:
    """Where Swagger UI's "Authorize" returns (it signs in through the token endpoint)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title="Replen API",
        redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
        redoc_favicon_url=f"{root}/docs-assets/favicon.png",
        with_google_fonts=False,
    )
