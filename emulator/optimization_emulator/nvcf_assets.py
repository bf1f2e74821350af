"""NVCF assets: create, upload (presigned PUT), list, get, delete.

``POST /v2/nvcf/assets`` with ``{"contentType", "description"}`` answers ``{"assetId",
"uploadUrl", "contentType", "description"}``. The upload URL points back at the emulator
(``PUT /_presigned/nvcf/assets/{assetId}``) and behaves like the S3 URL NVCF hands out:

* signed over the declared ``Content-Type`` and ``x-amz-meta-nvcf-asset-description`` (a PUT with
  other values, or without them, is 403 — the values are part of the signature);
* no ``Authorization`` header (400, "only one auth mechanism"), expires after ``asset_url_ttl``
  (NVCF: 1 h; then 403);
* a ``Content-Length`` is required (411 for a chunked body, as S3), at most 5 GB (413 before the body
  is read), the body is streamed to disk;
* uploading again replaces the data (a new PUT to a still-valid URL).

``DELETE`` answers 204 (404 for an unknown asset) and removes the data at once. Assets are not
expired after 24 h as on NVCF; the emulator keeps them until deleted or until it exits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from optimization_emulator import presigned
from optimization_emulator.app_keys import SIGNER, STORE
from optimization_emulator.errors import problem
from optimization_emulator.nvcf_config import NvcfConfig
from optimization_emulator.stats import Stats

API = "nvcf"
UPLOAD_ROUTE = presigned.PREFIX + "/nvcf/assets/{asset_id}"
DESCRIPTION_HEADER = "x-amz-meta-nvcf-asset-description"


@dataclasses.dataclass(frozen=True)
class Asset:
    asset_id: str
    content_type: str
    description: str
    created_at: str

    def view(self) -> dict[str, Any]:
        return {"assetId": self.asset_id, "contentType": self.content_type, "description": self.description}


def blob_key(asset_id: str) -> str:
    return f"{API}/assets/{asset_id}"


class AssetRegistry:
    """The account's assets (ids not deleted), their metadata and where their bytes are."""

    def __init__(self, app: web.Application, config: NvcfConfig, stats: Stats) -> None:
        self.app = app
        self.config = config
        self.stats = stats
        self.assets: dict[str, Asset] = {}

    def live_ids(self) -> list[str]:
        return sorted(self.assets)

    def data_path(self, asset_id: str) -> Path | None:
        """The uploaded bytes of ``asset_id``; None when it does not exist or was never uploaded."""
        if asset_id not in self.assets:
            return None
        path = self.app[STORE].path(blob_key(asset_id))
        return path if path.is_file() else None

    def _asset(self, request: web.Request) -> Asset:
        asset = self.assets.get(request.match_info["asset_id"])
        if asset is None:
            raise problem(web.HTTPNotFound, f"Asset '{request.match_info['asset_id']}' not found")
        return asset

    # -- handlers (authorization is checked by the caller's decorator) -------------------------------
    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise problem(web.HTTPBadRequest, "the request body must be JSON") from None
        if not isinstance(body, dict):
            raise problem(web.HTTPBadRequest, "the request body must be a JSON object")
        fields = {key: body.get(key) for key in ("contentType", "description")}
        bad = [key for key, value in fields.items() if not isinstance(value, str) or not value.strip()]
        if bad:
            raise problem(web.HTTPBadRequest, f"{' and '.join(bad)} must be non-empty strings")
        asset = Asset(
            asset_id=str(uuid.uuid4()),
            content_type=fields["contentType"],
            description=fields["description"],
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        self.assets[asset.asset_id] = asset
        url = self.app[SIGNER].sign(
            "PUT",
            UPLOAD_ROUTE.format(asset_id=asset.asset_id),
            ttl=self.config.asset_url_ttl,
            headers={"Content-Type": asset.content_type, DESCRIPTION_HEADER: asset.description},
        )
        self.stats.incr(API, "assets_created")
        return web.json_response({**asset.view(), "uploadUrl": url})

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"assets": [asset.view() for asset in self.assets.values()]})

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"asset": self._asset(request).view()})

    async def delete(self, request: web.Request) -> web.Response:
        asset = self._asset(request)
        del self.assets[asset.asset_id]
        self.app[STORE].path(blob_key(asset.asset_id)).unlink(missing_ok=True)
        self.stats.incr(API, "assets_deleted")
        return web.Response(status=204)

    async def upload(self, request: web.Request) -> web.Response:
        """The presigned PUT: signature (incl. the signed headers) first, then length and size."""
        self.app[SIGNER].verify(request)
        asset_id = request.match_info["asset_id"]
        if asset_id not in self.assets:
            raise problem(web.HTTPNotFound, f"asset {asset_id} was deleted; create a new one")
        if request.content_length is None:
            raise problem(
                web.HTTPLengthRequired,
                "MissingContentLength: send the body with a Content-Length (chunked uploads are refused)",
            )
        await presigned.receive_upload(request, API, blob_key(asset_id), self.config.asset_max_bytes)
        if asset_id not in self.assets:  # deleted while the body was arriving
            self.app[STORE].path(blob_key(asset_id)).unlink(missing_ok=True)
        return web.Response(status=200)
