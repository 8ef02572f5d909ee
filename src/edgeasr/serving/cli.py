"""``edgeasr serve``: the serving stage's command."""

from __future__ import annotations

import argparse
import sys

__all__ = ["EXIT_PARTIAL", "add_parser"]

EXIT_PARTIAL = 3
"""Exit code of ``edgeasr serve`` after a clean stop when some versions on disk did not load."""


def _serve(args: argparse.Namespace) -> int:
    from edgeasr.serving.server import ServerError, TritonServer

    if args.bind not in ("127.0.0.1", "localhost", "::1") and not args.public:
        print(
            f"edgeasr serve: --bind {args.bind} opens the server beyond this machine, and Triton has no "
            "authentication: add --public to do that on purpose",
            file=sys.stderr,
        )
        return 2
    routed = not args.no_route
    server = TritonServer(
        args.model_repository,
        bind=args.bind,
        grpc_port=0 if routed else args.grpc_port,
        grpc_bind="127.0.0.1" if routed else None,
        metrics_bind="127.0.0.1" if routed else None,
        http_port=args.http_port,
        metrics_port=0 if routed else args.metrics_port,
        models=args.models,
        log_verbose=args.log_verbose,
        binary=args.tritonserver,
        backend_directory=args.backend_directory,
        restrict_model_control=not args.allow_model_control,
        die_with_parent=True,  # a SIGKILLed `edgeasr serve` takes its tritonserver with it
    )
    front = endpoint = None

    def announce(srv) -> None:
        nonlocal front, endpoint
        grpc_url, metrics_url = srv.grpc_url, srv.metrics_url
        if routed:
            from edgeasr.serving.front import RoutingFront, max_request_bytes
            from edgeasr.serving.metrics import FrontMetrics, MetricsEndpoint

            metrics = FrontMetrics()
            front = RoutingFront(
                srv.grpc_url,
                args.model_repository,
                bind=args.bind,
                port=args.grpc_port,
                pair_log=args.pair_log,
                request_log=args.request_log,
                request_audio_dir=args.request_log_audio,
                metrics=metrics,
                max_message_bytes=max_request_bytes(args.model_repository),  # refused unread beyond this
            ).start()
            endpoint = MetricsEndpoint(srv.metrics_url, metrics, bind=args.bind, port=args.metrics_port).start()
            grpc_url = f"{front.url}   (routing front: a request naming no version goes where live.json says)"
            metrics_url = f"{endpoint.url}   (Triton's nv_inference_* and edgeasr_front_*)"
        print(f"edgeasr serve: models {', '.join(srv.models)} ready", flush=True)
        print(f"  gRPC     {grpc_url}", flush=True)
        print(f"  HTTP     {srv.http_url}   (Triton's own: name a version there)", flush=True)
        print(f"  metrics  {metrics_url}", flush=True)
        for model, versions in srv.unavailable.items():
            for version, reason in versions.items():
                print(f"edgeasr serve: {model} version {version} UNAVAILABLE: {reason}", file=sys.stderr, flush=True)
        print(f"  log      {srv.log_path}   (Ctrl-C stops)", flush=True)

    try:
        code = server.serve_forever(on_ready=announce)
    except (ServerError, OSError) as exc:
        print(f"edgeasr serve: {exc}", file=sys.stderr)
        server.stop()
        return 1
    finally:
        if front is not None:
            front.stop()
        if endpoint is not None:
            endpoint.stop()
    if code == 0 and server.unavailable:  # served, but not everything on disk: say so in the exit code
        code = EXIT_PARTIAL
    print(f"edgeasr serve: stopped (exit code {code})", flush=True)
    return code


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``edgeasr serve`` on the command line's subparsers.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``serve`` parser (its ``func`` default runs the server and returns an exit code).
    """
    parser = subparsers.add_parser(
        "serve",
        help="serve the model repository with the bundled Triton server (CPU, python backend)",
        description="Run the Triton Inference Server bundled with nvidia-pytriton on a model repository, "
        "loading its python-backend models; Ctrl-C or SIGTERM stops it cleanly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-repository", default="triton_models", help="Triton model repository")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (0 = any free port)")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP port (0 = any free port)")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (0 = any free port)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 = all interfaces)")
    parser.add_argument("--models", nargs="+", default=None, help="models to load (default: every python model)")
    parser.add_argument("--log-verbose", type=int, default=0, help="Triton log verbosity")
    parser.add_argument(
        "--tritonserver",
        default=None,
        help="tritonserver binary to run (default: the one in nvidia-pytriton; NVIDIA's images: "
        "/opt/tritonserver/bin/tritonserver)",
    )
    parser.add_argument(
        "--backend-directory",
        default=None,
        help="Triton backend directory (default: the bundled python backend; NVIDIA's images: "
        "/opt/tritonserver/backends)",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow --bind to an address other than loopback (Triton's endpoints have no authentication)",
    )
    parser.add_argument(
        "--allow-model-control",
        action="store_true",
        help="leave Triton's model-repository API (load/unload) open to clients; the canary's version "
        "control needs it. Without it the API answers only requests with this server's admin token",
    )
    parser.add_argument(
        "--no-route",
        action="store_true",
        help="expose Triton's gRPC port directly, without the routing front (a request naming no version "
        "then gets the highest loaded version, whatever the live file says)",
    )
    parser.add_argument(
        "--pair-log",
        default=None,
        help='JSONL file for the pairs of shadow traffic and challenger fallbacks (live.json "shadow": true)',
    )
    parser.add_argument(
        "--request-log",
        default=None,
        help="JSONL window log of every answered request's statistics (audio level, duration, silence, SNR; "
        "words, words per second, latency; no audio), for `edgeasr monitor --window`",
    )
    parser.add_argument(
        "--request-log-audio",
        default=None,
        metavar="DIR",
        help="with --request-log, also keep each request's audio in DIR (16 kHz FLAC, named in its record)",
    )
    parser.set_defaults(func=_serve)
    return parser
