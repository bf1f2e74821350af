"""The emulator's fault admin endpoints: ``GET/POST/DELETE /_emulator/faults[/{rule_id}]``.

Tests and users add, list and clear fault rules over HTTP (``EmulatorProcess.add_faults`` posts
here); rules from the config file are installed at start-up. What a rule *does* to a request is in
``faults.py``, its schema in ``fault_rules.py``. See docs/emulator.md, "Fault injection".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from optimization_emulator.app_keys import CONFIG, SITES, STATS
from optimization_emulator.errors import api_error
from optimization_emulator.fault_rules import FaultRuleError, normalize_route, validate_rules
from optimization_emulator.faults import ADMIN_PREFIX, FAULTS, STATS_GROUP

logger = logging.getLogger("optimization_emulator.faults")


def _known_routes(app: web.Application) -> set[str]:
    """Route templates rules may name: the main site's and those of the sites on their own ports."""
    apps = [app, *(site.app for site in app.get(SITES, ()))]
    return {
        normalize_route(resource.canonical)
        for each in apps
        for resource in each.router.resources()
        if not resource.canonical.startswith(ADMIN_PREFIX)
    }


def _unknown_routes(app: web.Application, specs: Iterable[dict[str, Any]]) -> list[str]:
    known = _known_routes(app)
    return [spec["route"] for spec in specs if spec["route"] and normalize_route(spec["route"]) not in known]


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"rules": [rule.view() for rule in request.app[FAULTS].rules]})


async def _add(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise api_error(web.HTTPBadRequest, 'the body must be JSON: {"rules": [rule, ...]}') from None
    if not isinstance(body, dict) or set(body) != {"rules"}:
        raise api_error(web.HTTPBadRequest, 'the body must be {"rules": [rule, ...]}')
    try:
        specs = validate_rules(body["rules"])
    except FaultRuleError as exc:
        raise api_error(web.HTTPBadRequest, str(exc)) from None
    unknown = _unknown_routes(request.app, specs)
    if unknown:
        known = ", ".join(sorted(_known_routes(request.app)))
        raise api_error(web.HTTPBadRequest, f"unknown route(s) {', '.join(unknown)}; known routes: {known}")
    added = request.app[FAULTS].add(specs)
    return web.json_response({"ids": [rule.id for rule in added], "rules": [rule.view() for rule in added]})


async def _clear(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[FAULTS].clear()})


async def _remove(request: web.Request) -> web.Response:
    rule_id = request.match_info["rule_id"]
    if not request.app[FAULTS].remove(rule_id):
        raise api_error(web.HTTPNotFound, f"no fault rule {rule_id!r}")
    return web.json_response({"cleared": 1})


def _install_configured(app: web.Application) -> None:
    specs = app[CONFIG].faults
    for route in _unknown_routes(app, specs):
        logger.warning("fault rule from the config file names unknown route %s: it never matches", route)
    app[FAULTS].add(specs)


def setup(app: web.Application) -> None:
    """Counters and admin routes of the fault rules in ``app[FAULTS]``; the config file's rules are
    installed at start-up.

    Call after the APIs registered their routes; add :func:`inject_faults` to the middlewares."""
    app[STATS].declare(STATS_GROUP, ("injected",), ("by_action",))
    app.router.add_get(ADMIN_PREFIX + "faults", _list)
    app.router.add_post(ADMIN_PREFIX + "faults", _add)
    app.router.add_delete(ADMIN_PREFIX + "faults", _clear)
    app.router.add_delete(ADMIN_PREFIX + "faults/{rule_id}", _remove)
    _install_configured(app)
