"""The metrics port of ``edgeasr serve``: Triton's own metrics and edgeasr's, on one Prometheus endpoint.

Triton exposes its ``nv_inference_*`` metrics on a port of its own; edgeasr's routing front counts
what Triton cannot see (which role answered a request that named no version, challenger
fallbacks, shadow mirrors). :class:`MetricsEndpoint` serves both on one address: ``GET /metrics``
returns Triton's text followed by edgeasr's registry (``prometheus-client``'s exposition format),
so one scrape job sees everything with the model and version as labels.

edgeasr's metrics (:class:`FrontMetrics`):

* ``edgeasr_front_requests_total{model, version, role}``: inference requests the front routed;
  ``role`` is ``champion``, ``challenger`` or ``named`` (the client named the version).
* ``edgeasr_front_fallbacks_total{model, version}``: requests whose challenger (``version``)
  failed and which the champion answered instead.
* ``edgeasr_front_mirrors_total{model, outcome}``: shadow mirrors ``sent`` or ``shed``.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["FrontMetrics", "MetricsEndpoint"]


class FrontMetrics:
    """The routing front's counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgeasr_front_requests",
            "Inference requests through the routing front, by the version and role that answered",
            ["model", "version", "role"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "edgeasr_front_fallbacks",
            "Requests whose challenger failed and which the champion answered",
            ["model", "version"],
            registry=self.registry,
        )
        self.mirrors = Counter(
            "edgeasr_front_mirrors",
            "Shadow mirrors of routed requests, sent or shed",
            ["model", "outcome"],
            registry=self.registry,
        )

    def text(self) -> bytes:
        """The registry in Prometheus's text exposition format."""
        return generate_latest(self.registry)


class MetricsEndpoint:
    """``GET /metrics``: Triton's metrics (fetched per scrape) followed by edgeasr's registry.

    Args:
        triton_metrics_url: Triton's metrics address, ``http://host:port/metrics``.
        metrics: edgeasr's counters.
        bind: address to listen on.
        port: port to listen on; 0 picks a free one (see :attr:`port` after :meth:`start`).
    """

    def __init__(self, triton_metrics_url: str, metrics: FrontMetrics, *, bind: str = "127.0.0.1", port: int = 0):
        self.triton_metrics_url = triton_metrics_url
        self.metrics = metrics
        self.bind, self.port = bind, int(port)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The scrape address, ``http://host:port/metrics``."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"http://{host}:{self.port}/metrics"

    def scrape(self) -> bytes:
        """What one scrape returns: Triton's text (or a comment saying why not) and edgeasr's."""
        try:
            with urllib.request.urlopen(self.triton_metrics_url, timeout=5.0) as resp:
                triton = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            triton = f"# Triton metrics unavailable: {exc}\n".encode()
        if triton and not triton.endswith(b"\n"):
            triton += b"\n"
        return triton + self.metrics.text()

    def start(self) -> MetricsEndpoint:
        """Listen in a daemon thread.

        Raises:
            OSError: the port cannot be bound.
        """
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                body = endpoint.scrape()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # scrapes are not news
                pass

        self._server = ThreadingHTTPServer((self.bind, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="edgeasr-metrics", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
