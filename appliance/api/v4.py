"""NanoMQ's HTTP API v4 (docs/en_US/api/v4.md in the nanomq repository), as a WSGI app.

`HttpServer` authenticates and serves `/api/v4/prometheus` and `/api/v4/metrics`; it hands
every other `/api/v4` request here. Paths, methods, JSON shapes and result codes are
NanoMQ's; where NanoMQ has none (paging, kick) they are EMQX 4's, which NanoMQ's API copies.
Every answer is JSON with a `code`; a wrong request gets 4xx, NanoMQ's code and a `message`,
never a traceback. What a caller can make expensive is bounded: pages hold at most
`MAX_PAGE_LIMIT` records, the topic tree at most `MAX_TOPIC_TREE_ENTRIES`, a body at most
`MAX_BODY_BYTES`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from .. import __version__
from ..broker.topics import matches, valid_topic_name
from ..reload import ReloadFailed
from . import configuration
from .broker_view import BrokerView, ClientRecord
from .errors import (
    CLIENT_IS_OFFLINE, PARAMS_HOCON_FORMAT_ILLEGAL, PLUGIN_IS_CLOSED, REQ_PARAM_ERROR, RPC_ERROR, SUCCEED,
    UNKNOWN_MISTAKE, ApiError, bad_request, not_found,
)
from .publish import PublishLimits, batch_item_topic, batch_items, messages_from
from .requests import (
    MAX_PAGE_LIMIT, PAGING_PARAMS, boolean_param, integer_param, json_body, paging, path_segments, query,
)

log = logging.getLogger(__name__)

ROOT = "/api/v4"
MAX_TOPIC_TREE_ENTRIES = 10_000  # nodes plus client ids in one topic-tree answer
SYSDESCR = "MQTT broker appliance (NanoMQ-compatible)"

_CLIENT_FILTERS = frozenset({"clientid", "username", "conn_state", "clean_start", "proto_name", "proto_ver",
                             "_like_clientid", "_like_username"}) | PAGING_PARAMS
_SUBSCRIPTION_FILTERS = frozenset({"clientid", "topic", "qos", "share", "_match_topic"}) | PAGING_PARAMS
_CONN_STATES = ("connected", "idle", "disconnected")
_SERVED_BY_HTTP_SERVER = {"metrics": {"GET"}, "prometheus": {"GET"}}  # for the Allow header


class ApiV4:
    """The WSGI app for `/api/v4` below the metrics endpoints.

    `config` returns the configuration now in force (a callable, so a reload shows at once);
    `reload`, when given, re-reads the file and applies it, returning a JSON-able summary of
    what changed, or raising `ReloadFailed`."""

    def __init__(self, broker: BrokerView, config: Callable, reload: Callable[[], object] | None = None,
                 started: float | None = None) -> None:
        self._broker = broker
        self._config = config
        self._reload = reload
        self._started = time.monotonic() if started is None else started
        # (method, first path segment) -> handler(segments, environ) -> document
        self._routes: dict[tuple[str, str], Callable] = {
            ("GET", ""): self._endpoints,
            ("GET", "brokers"): self._brokers,
            ("GET", "nodes"): self._nodes,
            ("GET", "clients"): self._clients,
            ("DELETE", "clients"): self._kick,
            ("GET", "subscriptions"): self._subscriptions,
            ("GET", "topic-tree"): self._topic_tree,
            ("POST", "mqtt"): self._publish,
            ("GET", "configuration"): self._configuration,
            ("GET", "reload"): self._reloadable,
            ("POST", "reload"): self._post_reload,
        }

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            segments = path_segments(environ, ROOT)
            handler = self._routes.get((method, segments[0] if segments else ""))
            if handler is None:
                raise self._no_route(method, segments)
            document = handler(segments[1:], environ)
            return _json(start_response, "200 OK", document)
        except ApiError as error:
            return _json(start_response, error.status, {"code": error.code, "message": error.message},
                         error.headers)
        except Exception:
            # Never log the environ: it holds the Authorization header.
            log.exception("HTTP API %s %s failed", method, environ.get("PATH_INFO"))
            return _json(start_response, "500 Internal Server Error",
                         {"code": UNKNOWN_MISTAKE, "message": "internal error; see the broker's log"})

    def _no_route(self, method: str, segments: list[str]) -> ApiError:
        first = segments[0] if segments else ""
        allowed = sorted({m for m, path in self._routes if path == first} | _SERVED_BY_HTTP_SERVER.get(first, set()))
        if allowed:
            return ApiError("405 Method Not Allowed", UNKNOWN_MISTAKE, f"{method} is not allowed here",
                            (("Allow", ", ".join(allowed)),))
        return not_found(UNKNOWN_MISTAKE, "no such endpoint")

    # -- GET /api/v4, /brokers, /nodes ------------------------------------------------

    def _endpoints(self, rest, environ) -> dict:
        _no_more(rest)
        return {"code": SUCCEED, "data": [
            {"path": path, "name": name, "method": method, "descr": descr} for path, name, method, descr in ENDPOINTS]}

    def _brokers(self, rest, environ) -> dict:
        _no_more(rest)
        return {"code": SUCCEED, "data": [{
            "datetime": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "node_status": "Running",
            "sysdescr": SYSDESCR,
            "uptime": self._uptime(),
            "version": __version__,
        }]}

    def _nodes(self, rest, environ) -> dict:
        _no_more(rest)
        return {"code": SUCCEED, "data": [{
            "connections": self._broker.connection_count(),
            "node_status": "Running",
            "uptime": self._uptime(),
            "version": __version__,
        }]}

    def _uptime(self) -> str:
        seconds = int(time.monotonic() - self._started)
        return f"{seconds // 3600} Hours, {seconds // 60 % 60} minutes, {seconds % 60} seconds"

    # -- clients ----------------------------------------------------------------------

    def _clients(self, rest, environ) -> dict:
        """GET /clients (filters, paging), /clients/{clientid}, /clients/username/{username}.
        A client id may hold slashes: everything after /clients/ is the id."""
        if rest and rest[0] == "username" and len(rest) > 1:
            username = "/".join(rest[1:])
            query(environ, frozenset())
            records = sorted((c for c in self._broker.clients() if c.username == username),
                             key=lambda c: c.client_id)
            return {"code": SUCCEED, "data": [_client_json(c) for c in records[:MAX_PAGE_LIMIT]]}
        if rest:
            query(environ, frozenset())
            record = self._broker.client("/".join(rest))
            # NanoMQ and EMQX answer an unknown id with an empty list, not an error.
            return {"code": SUCCEED, "data": [_client_json(record)] if record else []}
        params = query(environ, _CLIENT_FILTERS)
        page, limit = paging(params)
        keep = _client_filter(params)
        records = sorted((c for c in self._broker.clients() if keep(c)), key=lambda c: c.client_id)
        return _page(records, page, limit, _client_json)

    def _kick(self, rest, environ) -> dict:
        """DELETE /clients/{clientid}: EMQX's kick, which ends the connection and the session."""
        if not rest:
            raise bad_request(REQ_PARAM_ERROR, "DELETE /api/v4/clients/{clientid}")
        query(environ, frozenset())
        client_id = "/".join(rest)
        if not self._broker.kick(client_id):
            raise not_found(CLIENT_IS_OFFLINE, f"no client {client_id!r}")
        log.info("client %s kicked through the HTTP API", client_id)
        return {"code": SUCCEED}

    # -- subscriptions and the topic tree ---------------------------------------------

    def _subscriptions(self, rest, environ) -> dict:
        if rest:
            query(environ, frozenset())
            records = sorted(self._broker.subscriptions("/".join(rest)), key=lambda s: s.topic_filter)
            return {"code": SUCCEED, "data": [_subscription_json(s) for s in records[:MAX_PAGE_LIMIT]]}
        params = query(environ, _SUBSCRIPTION_FILTERS)
        page, limit = paging(params)
        client_id = params.get("clientid")
        topic = params.get("topic")
        qos = integer_param(params, "qos", 0, 2)
        share = params.get("share")
        match_topic = params.get("_match_topic")
        if match_topic is not None and not valid_topic_name(match_topic):
            raise bad_request(REQ_PARAM_ERROR, f"_match_topic {match_topic!r} is not a topic name")

        def keep(sub) -> bool:
            return ((topic is None or sub.topic_filter == topic)
                    and (qos is None or sub.qos == qos)
                    and (share is None or sub.share_group == share)
                    and (match_topic is None or matches(sub.plain_filter, match_topic)))

        records = sorted((s for s in self._broker.subscriptions(client_id) if keep(s)),
                         key=lambda s: (s.client_id, s.topic_filter))
        return _page(records, page, limit, _subscription_json)

    def _topic_tree(self, rest, environ) -> dict:
        """NanoMQ's shape: one list per depth, the root ("") first; each node its level, its
        number of children and the clients subscribed exactly there. Cut at
        MAX_TOPIC_TREE_ENTRIES (nodes plus client ids), with `truncated` saying so."""
        _no_more(rest)
        query(environ, frozenset())
        root = _TreeNode()
        budget = [MAX_TOPIC_TREE_ENTRIES - 1]  # the root is the first entry
        truncated = not all(root.add(sub.plain_filter.split("/"), sub.client_id, budget)
                            for sub in self._broker.subscriptions())
        levels = []
        current = [("", root)]
        while current:
            levels.append([{"topic": name, "cld_cnt": len(node.children), "clientid": node.clients}
                           for name, node in current])
            current = [(name, child) for _, node in current for name, child in sorted(node.children.items())]
        document = {"code": SUCCEED, "data": levels}
        if truncated:
            document["truncated"] = True
        return document

    # -- publishing -------------------------------------------------------------------

    def _publish(self, rest, environ) -> dict:
        """POST /mqtt/publish and /mqtt/publish_batch, routed like any client's PUBLISH."""
        if rest == ["publish"]:
            query(environ, frozenset())
            messages = messages_from(json_body(environ), PublishLimits.of(self._config()))
            for message in messages:
                self._broker.publish(message)
            return {"code": SUCCEED}
        if rest == ["publish_batch"]:
            query(environ, frozenset())
            items = batch_items(json_body(environ))
            limits = PublishLimits.of(self._config())
            results = []
            for item in items:
                # Each item stands alone, as in NanoMQ: one wrong item does not stop the rest.
                result = {"topic": batch_item_topic(item), "code": SUCCEED}
                try:
                    for message in messages_from(item, limits):
                        self._broker.publish(message)
                except ApiError as error:
                    result.update(code=error.code, message=error.message)
                results.append(result)
            return {"code": SUCCEED, "data": results}
        if rest and rest[0] in ("subscribe", "unsubscribe", "subscribe_batch", "unsubscribe_batch"):
            raise ApiError("501 Not Implemented", PLUGIN_IS_CLOSED,
                           f"/mqtt/{rest[0]} is not supported (NanoMQ documents it as unsupported too)")
        raise not_found(UNKNOWN_MISTAKE, "no such endpoint")

    # -- configuration and reload -----------------------------------------------------

    def _configuration(self, rest, environ) -> dict:
        """GET /configuration (every section) or /configuration/{section}; secrets masked."""
        query(environ, frozenset())
        config = self._config()
        if not rest:
            return {"code": SUCCEED, "data": configuration.sections(config)}
        if len(rest) == 1 and rest[0] in configuration.SECTIONS:
            return {"code": SUCCEED, "data": {rest[0]: configuration.SECTIONS[rest[0]](config)}}
        raise not_found(RPC_ERROR, f"no configuration section {'/'.join(rest)!r}; "
                                   f"known: {', '.join(configuration.SECTIONS)}")

    def _reloadable(self, rest, environ) -> dict:
        """GET /reload: NanoMQ's hot-updatable settings, as they are now."""
        _no_more(rest)
        query(environ, frozenset())
        basic = configuration.SECTIONS["basic"](self._config())
        keys = ("property_size", "max_packet_size", "client_max_packet_size", "msq_len", "qos_duration",
                "keepalive_backoff", "allow_anonymous")
        return {"code": SUCCEED, "data": {key: basic[key] for key in keys}}

    def _post_reload(self, rest, environ) -> dict:
        """POST /reload: re-read the config file and apply it (the hot-reload seam). NanoMQ's
        body of values to set is not taken: the file is the one source of configuration."""
        _no_more(rest)
        query(environ, frozenset())
        if self._reload is None:
            raise ApiError("501 Not Implemented", PLUGIN_IS_CLOSED, "hot reload is not available in this build")
        if _has_body(environ) and _sets_values(json_body(environ)):
            raise bad_request(REQ_PARAM_ERROR, "setting values through the API is not supported: "
                                               "edit the config file, then POST /api/v4/reload without a body")
        try:
            summary = self._reload()
        except ReloadFailed as error:
            raise bad_request(PARAMS_HOCON_FORMAT_ILLEGAL, str(error)) from error
        document = {"code": SUCCEED}
        if summary is not None:
            document["data"] = summary
        return document


class _TreeNode:
    __slots__ = ("children", "clients")

    def __init__(self) -> None:
        self.children: dict[str, _TreeNode] = {}
        self.clients: list[str] = []

    def add(self, levels: list[str], client_id: str, budget: list[int]) -> bool:
        """Add one subscription; False, leaving it out, once the budget of entries is spent."""
        node = self
        for level in levels:
            child = node.children.get(level)
            if child is None:
                if budget[0] <= 0:
                    return False
                budget[0] -= 1
                child = node.children[level] = _TreeNode()
            node = child
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        node.clients.append(client_id)
        return True


def _has_body(environ) -> bool:
    return (environ.get("CONTENT_LENGTH") or "0") != "0" or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "")


def _sets_values(body) -> bool:
    """NanoMQ's POST /reload carries {"data": {setting: value}}; an empty one sets nothing."""
    return not (body is None or body == {} or (isinstance(body, dict) and set(body) == {"data"}
                                               and not body["data"]))


def _no_more(rest: list) -> None:
    if rest:
        raise not_found(UNKNOWN_MISTAKE, "no such endpoint")


def _client_filter(params: dict) -> Callable[[ClientRecord], bool]:
    client_id = params.get("clientid")
    username = params.get("username")
    like_id = params.get("_like_clientid")
    like_user = params.get("_like_username")
    conn_state = params.get("conn_state")
    if conn_state is not None and conn_state not in _CONN_STATES:
        raise bad_request(REQ_PARAM_ERROR, f"conn_state must be one of {', '.join(_CONN_STATES)}")
    clean_start = boolean_param(params, "clean_start")
    proto_name = params.get("proto_name")
    proto_ver = integer_param(params, "proto_ver", 3, 5)

    def keep(client: ClientRecord) -> bool:
        return ((client_id is None or client.client_id == client_id)
                and (username is None or client.username == username)
                and (like_id is None or like_id in client.client_id)
                and (like_user is None or (client.username is not None and like_user in client.username))
                and (conn_state is None or _conn_state(client) == conn_state)
                and (clean_start is None or client.clean_start == clean_start)
                and (proto_name is None or _proto_name(client) == proto_name)
                and (proto_ver is None or client.protocol_version == proto_ver))

    return keep


def _conn_state(client: ClientRecord) -> str:
    return "connected" if client.connected else "disconnected"


def _proto_name(client: ClientRecord) -> str | None:
    if client.protocol_version is None:
        return None
    return "MQIsdp" if client.protocol_version == 3 else "MQTT"


def _client_json(client: ClientRecord) -> dict:
    """NanoMQ's fields first (client_id, username, keepalive, ipv4, conn_state, clean_start,
    proto_name, proto_ver, will_topic), then EMQX's that operators look for."""
    host, port = client.peer if client.peer else (None, None)
    document = {
        "client_id": client.client_id,
        "username": client.username or "",
        "keepalive": client.keepalive,
        "ipv4": host or "",
        "conn_state": _conn_state(client),
        "clean_start": client.clean_start,
        "proto_name": _proto_name(client),
        "proto_ver": client.protocol_version,
    }
    if client.will_topic is not None:
        document["will_topic"] = client.will_topic
    document.update({
        "clientid": client.client_id,
        "connected": client.connected,
        "ip_address": host,
        "port": port,
        "expiry_interval": client.expiry_interval,
        "subscriptions_cnt": client.subscriptions,
        "inflight": client.inflight,
        "mqueue_len": client.queued,
    })
    return document


def _subscription_json(sub) -> dict:
    return {"clientid": sub.client_id, "topic": sub.topic_filter, "qos": sub.qos}


def _page(records: list, page: int, limit: int, render: Callable) -> dict:
    start = (page - 1) * limit
    chosen = records[start:start + limit]
    return {"code": SUCCEED, "data": [render(record) for record in chosen],
            "meta": {"page": page, "limit": limit, "count": len(records),
                     "hasnext": start + limit < len(records)}}


def _json(start_response, status: str, document: dict, headers: Iterable = ()):
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            *headers])
    return [body]


# GET /api/v4: what this build serves, in NanoMQ's form.
ENDPOINTS = (
    ("/brokers/", "list_brokers", "GET", "A list of brokers in the cluster"),
    ("/nodes/", "list_nodes", "GET", "A list of nodes in the cluster"),
    ("/clients/", "list_clients", "GET", "A list of clients on current node"),
    ("/clients/:clientid", "lookup_client", "GET", "Lookup a client in the cluster"),
    ("/clients/:clientid", "kickout_client", "DELETE", "Kick out a client: ends its connection and session"),
    ("/clients/username/:username", "lookup_client_via_username", "GET",
     "Lookup a client via username in the cluster"),
    ("/subscriptions/", "list_subscriptions", "GET", "A list of subscriptions in the cluster"),
    ("/subscriptions/:clientid", "lookup_client_subscriptions", "GET", "A list of subscriptions of a client"),
    ("/topic-tree/", "list_topic-tree", "GET", "A list of topic-tree in the cluster"),
    ("/mqtt/publish", "mqtt_publish", "POST", "Publish a MQTT message"),
    ("/mqtt/publish_batch", "mqtt_publish_batch", "POST", "Batch publish MQTT messages"),
    ("/configuration/", "get_broker_configuration", "GET", "show all configuration of broker"),
    ("/configuration/:section", "get_section_configuration", "GET", "show one section of the configuration"),
    ("/reload/", "get_hot_updatable_configuration", "GET", "show the configuration that can be hot updated"),
    ("/reload/", "reload_configuration", "POST", "re-read the configuration file and apply it"),
    ("/metrics", "metrics", "GET", "Returns all statistical metrics"),
    ("/prometheus", "prometheus", "GET", "Returns all prometheus data"),
)
