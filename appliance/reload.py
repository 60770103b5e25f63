"""Hot reload: SIGHUP or POST /api/v4/reload re-reads the config file and applies it to the
running appliance, without dropping a connection or a queued event.

One reload is: load and validate the file (`load_config`, one frozen `Config`); a file with
an error changes nothing (the running config stays, the error is the answer); otherwise
diff the running `Config` against it block by block and hand each changed block to the part
that owns it (`reconfigure(...)`), which changes its own state:

- auth: `AccessControl.reconfigure` and `Gate.use`, then each connected `Client` gets a
  fresh ACL (`Client.reauthorized`) and loses the subscriptions the new rules deny;
  passwords apply at the next CONNECT.
- mqtt, limits: `Wiring.reconfigure` (new `ClientSettings` for the next connection),
  `Admission.reconfigure` (at once), `Broker.reconfigure` (new sessions, the next retained
  message, the next retry sweep).
- log: `configure_logging`, at once.
- webhook: `WebhookStage.reconfigure`: queued events go to the new endpoint, POSTs under
  way finish; rules and encoding apply to the next event.
- bridges: `Bridges.reconfigure`: added ones start, removed ones stop, changed ones restart
  keeping their queue; unchanged ones are not touched.
- http_server credentials: `HttpServer.reconfigure`, from the next request (the chart's
  config watcher sends the new ones after a reload).

Not live (reported in the one line as needing a restart; the running value stays): the
listeners (binds, TLS), http_server's address or the block coming or going, webhook.queue
(spool, max_len) and webhook.order (what is queued is keyed by it), the webhook
block appearing or going, and any block this module does not know (e.g. persistence).

Every reload logs one line (key paths only, never a value: secrets stay out of the log)
and counts `appliance_config_reloads_total{result}`: success, partial (something needs a
restart or failed to apply), failed (the file is wrong: nothing changed).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Callable

import gevent
from gevent.lock import Semaphore
from prometheus_client import Counter

from .auth.acl import SUBSCRIBE
from .config import ConfigError, LoadedConfig
from .config.keys import KEY
from .config.model import Config
from .logs import SecretFilter, configure_logging, configured_secrets

log = logging.getLogger("appliance.reload")
log.setLevel(logging.INFO)  # the one line per reload shows at every log.level, as the listening lines

SUCCESS, PARTIAL, FAILED = "success", "partial", "failed"


class ReloadFailed(Exception):
    """Raised by `Reloader.api_reload` when the file cannot be applied; the message says why
    (and the running configuration stays). POST /api/v4/reload answers it with 400."""

RESULTS = (SUCCESS, PARTIAL, FAILED)

_IGNORED = ("source",)
_BRIDGE_TIMEOUT = 1.0  # seconds a removed or changed bridge gets to send what is queued


def changed_keys(old, new, prefix: str = "") -> list[str]:
    """The key paths that differ between two configs or blocks: the field's declared key
    path where it has one without placeholders, else the field names joined; listeners and
    bridges by name. Never values."""
    if old == new:
        return []
    if dataclasses.is_dataclass(old) and type(old) is type(new):
        paths = []
        for field in dataclasses.fields(old):
            if field.name in _IGNORED:
                continue
            spec = field.metadata.get(KEY)
            path = spec.path if spec is not None and "<" not in spec.path and "[" not in spec.path \
                else f"{prefix}.{field.name}" if prefix else field.name
            paths += changed_keys(getattr(old, field.name), getattr(new, field.name), path)
        return paths or [prefix]
    if _named(old) and _named(new):
        before, after = {item.name: item for item in old}, {item.name: item for item in new}
        where = "bridges.mqtt" if prefix == "bridges" else prefix
        paths = []
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                paths.append(f"{where}.{name}")
        return paths
    return [prefix]


def _named(value) -> bool:
    return isinstance(value, tuple) and all(hasattr(item, "name") and dataclasses.is_dataclass(item)
                                            for item in value)


@dataclasses.dataclass
class Outcome:
    """What one reload did."""

    result: str
    changed: list[str] = dataclasses.field(default_factory=list)  # applied
    not_applied: list[str] = dataclasses.field(default_factory=list)  # need a restart, or failed
    error: str | None = None

    def summary(self) -> dict:
        return {"result": self.result, "changed": self.changed, "not_applied": self.not_applied}


class Reloader:
    """Reloads `appliance` from `load()` (the file it was started with), one reload at a time."""

    def __init__(self, appliance, load: Callable[[], LoadedConfig], registry) -> None:
        self._appliance = appliance
        self._load = load
        self._lock = Semaphore()
        self.reloads = Counter("appliance_config_reloads", "Configuration reloads (SIGHUP, POST /api/v4/reload), "
                               "by result: success, partial (part needs a restart), failed (nothing changed).",
                               ["result"], registry=registry)
        for result in RESULTS:
            self.reloads.labels(result)  # at 0 from the start

    def on_signal(self) -> None:
        """SIGHUP: the handler runs on the hub, which must not block; reload on a greenlet."""
        gevent.spawn(self.reload_now)

    def api_reload(self) -> dict:
        """POST /api/v4/reload: the summary, or ReloadFailed (400, NanoMQ code 117) with why."""
        outcome = self.reload_now()
        if outcome.result == FAILED:
            raise ReloadFailed(outcome.error)
        return outcome.summary()

    def reload_now(self) -> Outcome:
        with self._lock:
            outcome = self._reload()
        self.reloads.labels(outcome.result).inc()
        return outcome

    def _reload(self) -> Outcome:
        try:
            loaded = self._load()
        except ConfigError as error:
            log.error("configuration reload failed, the running configuration stays: %s", error)
            return Outcome(FAILED, error=str(error))
        old, new = self._appliance.config, loaded.config
        source = new.source or "the configuration"
        try:
            changed, not_applied, effective = self._apply(old, new)
        except Exception as error:  # noqa: BLE001 - a bug must not take the broker down with it
            log.exception("configuration reload from %s failed while applying it", source)
            return Outcome(PARTIAL, error=f"{type(error).__name__}: {error}")
        self._appliance.adopt(effective)
        outcome = Outcome(PARTIAL if not_applied else SUCCESS, changed, not_applied)
        if not changed and not not_applied:
            log.info("configuration reloaded from %s: nothing changed", source)
        elif not_applied:
            log.warning("configuration reloaded from %s: changed %s; not applied, needs a restart (running "
                        "values kept): %s", source, ", ".join(changed) or "nothing", ", ".join(not_applied))
        else:
            log.info("configuration reloaded from %s: changed %s", source, ", ".join(changed))
        return outcome

    # -- block by block ------------------------------------------------------------------

    def _apply(self, old: Config, new: Config) -> tuple[list[str], list[str], Config]:
        """Apply what changed; (key paths applied, key paths not applied, the Config now in
        force: `new` with the running values of what was not applied). Each part returns
        the block it now runs with, so what it could not apply is the difference."""
        live = {"auth": self._auth, "mqtt": lambda old, new: new.mqtt,
                "limits": lambda old, new: new.limits, "log": self._log,
                "webhook": self._webhook, "bridges": self._bridges, "http_server": self._http_server}
        changed: list[str] = []
        not_applied: list[str] = []
        in_force: dict = {}
        for field in dataclasses.fields(Config):
            name = field.name
            before, after = getattr(old, name), getattr(new, name)
            if name in _IGNORED or before == after:
                continue
            apply = live.get(name)
            now = before
            if apply is not None:
                try:
                    now = apply(old, new)
                except Exception:  # noqa: BLE001 - one part failing must not stop the others
                    log.exception("reload: could not apply %s", name)
                    now = before
            changed += changed_keys(before, now, name)
            not_applied += changed_keys(now, after, name)
            in_force[name] = now
        effective = dataclasses.replace(new, **in_force)
        if configured_secrets(old) != configured_secrets(effective) and effective.log == old.log:
            self._log(old, effective)  # a new secret (a header's token...) is hidden from the next line on
        if (old.mqtt, old.limits, old.auth) != (effective.mqtt, effective.limits, effective.auth):
            self._connections(effective)
        return changed, not_applied, effective

    def _auth(self, old: Config, new: Config):
        """Swap access control, then give every connected client its ACL under the new rules."""
        appliance = self._appliance
        access = appliance.access
        if new.auth is None:
            retired, access = access, None
        elif access is None:
            from .app import access_control

            retired, access = None, access_control(new, appliance.stats)
        else:
            http = access.http
            if new.auth.http != old.auth.http:
                from .auth.http import HttpAuth

                http = HttpAuth(new.auth.http, appliance.stats) if new.auth.http is not None else None
            retired_http = access.reconfigure(new.auth, http)
            if retired_http is not None:
                retired_http.close()
            retired = None
        appliance.gate.use(access)
        appliance.adopt_access(access)
        disconnect = access is not None and access.disconnect_on_deny
        for client in appliance.broker.links():
            if not hasattr(client, "reauthorized") or client.info is None:
                continue
            acl = access.client_acl(client.info, client.superuser, client.facts) if access is not None else None
            revoked = [] if acl is None else [
                topic_filter for topic_filter, plain in client.subscription_filters()
                if not acl.allows(SUBSCRIBE, plain)]
            client.reauthorized(acl, revoked, disconnect)
        if retired is not None:
            retired.close()
        return new.auth

    def _connections(self, config: Config) -> None:
        """mqtt and limits (and whether CONNECTs are authenticated): for what comes next."""
        appliance = self._appliance
        access = appliance.access
        settings = dataclasses.replace(
            appliance.wiring.settings, mqtt=config.mqtt, limits=config.limits,
            authenticates=access is not None, disconnect_on_deny=access is not None and access.disconnect_on_deny)
        appliance.wiring.reconfigure(settings, config.limits.max_outbox_bytes)
        appliance.admission.reconfigure(config.limits)
        appliance.broker.reconfigure(config.mqtt, config.limits)

    def _log(self, old: Config, new: Config):
        if "file" in new.log.to and new.log.dir.endswith("/"):
            os.makedirs(new.log.dir, exist_ok=True)  # as at start (NanoMQ's rule)
        values, names = configured_secrets(new)
        old_values, old_names = configured_secrets(old)  # lines about the old config may still come
        configure_logging(new.log, SecretFilter(values + old_values, names + old_names))
        return new.log

    def _webhook(self, old: Config, new: Config):
        stage = self._appliance.webhook
        if stage is None or new.webhook is None:
            return old.webhook  # a stage (and its Durable barrier) is built at start only
        stage.reconfigure(new.webhook)
        self._appliance.broker.hooks_changed()  # rules may now name (or no longer name) optional events
        return stage.config  # the new block but for what only a restart changes

    def _http_server(self, old: Config, new: Config):
        http = self._appliance.http
        if http is None or new.http_server is None:
            return old.http_server  # the server is started, or not, at start only
        http.reconfigure(new.http_server)
        return dataclasses.replace(new.http_server, bind=old.http_server.bind, port=old.http_server.port)

    def _bridges(self, old: Config, new: Config):
        appliance = self._appliance
        if appliance.bridges is None:
            appliance.start_bridges(new.bridges)
        else:
            appliance.bridges.reconfigure(new.bridges, _BRIDGE_TIMEOUT)
        return new.bridges

