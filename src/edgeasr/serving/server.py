"""Running the real Triton Inference Server on CPU, from the ``nvidia-pytriton`` wheel.

The wheel ships a complete ``tritonserver`` 2.51 binary with the python backend only (no
onnxruntime/TensorRT backends: those come with NVIDIA's images, see ``Dockerfile.cpu``/``.gpu``).
:class:`TritonServer` runs that binary directly on a model repository, without PyTriton's API.
What it takes (measured, see ``shared/notes/triton-on-cpu.md``):

* **Backend directory.** Triton 2.51 looks for ``triton_python_backend_stub`` only next to
  ``libtriton_python.so``. site-packages is left untouched: the python backend (library, utils,
  and the stub for the running Python version) is copied once into a per-user cache,
  ``$XDG_CACHE_HOME/edgeasr/triton/<pytriton version>-py<X.Y>/backends/python``
  (``~/.cache`` by default; ``EDGEASR_TRITON_CACHE`` overrides the ``.../edgeasr/triton`` part),
  atomically (temp dir + rename), and reused.
* **Environment.** ``LD_LIBRARY_PATH`` starts with the running Python's ``LIBDIR`` so the stub
  loads the matching ``libpython``; ``PATH`` starts with this interpreter's ``bin/`` so the stub
  finds this venv's packages (numpy<2, onnxruntime) through its ``pyvenv.cfg``.
* **Models.** ``--model-control-mode explicit``; once the server is live, each model whose backend
  the bundled server has (``backend: "python"``) is loaded through the repository API, so a
  repository that also holds native ``onnxruntime_onnx``/``tensorrt_plan`` flavours still serves
  here. Triton loads a model's versions all or nothing, so when a model does not load each version
  is tried alone and the model is loaded with those that load (a ``version_policy`` override,
  ``config.pbtxt`` untouched); the others are in :attr:`TritonServer.unavailable` with Triton's
  reason, and ``edgeasr serve`` prints them and exits 3 when stopped. A later ``load_model``
  without an override reads ``config.pbtxt`` again, broken version included.
* **Shared memory.** Each server gets its own python-backend region prefix
  (``triton_python_backend_shm_region_edgeasr<pid>x<n>_``); :meth:`TritonServer.stop` removes the
  ``/dev/shm`` files with that prefix, including those a crashed stub left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "ServerError",
    "TritonServer",
    "bundled_backends",
    "find_tritonserver",
    "python_models",
]

ADMIN_HEADER = "edgeasr-admin"
"""Header that must carry a restricted server's ``admin_token`` for the model-repository API."""
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"
"""Default name prefix of the python backend's shared-memory regions."""

_counter = itertools.count(1)
_FATAL_LOG = (
    "error while loading shared libraries",
    "failed to load",
    "stub process is unhealthy",
)


class ServerError(RuntimeError):
    """The Triton server is missing, failed to start, or died."""


def _pytriton_dir() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the Triton server binary comes with nvidia-pytriton: pip install 'edgeasr[serve]'")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def find_tritonserver() -> Path:
    """Return the bundled ``tritonserver`` binary.

    Returns:
        Path to the executable.

    Raises:
        ServerError: nvidia-pytriton is not installed, it lacks the binary or python backend, or
            this environment has numpy 2 (the stub would silently corrupt tensors).
    """
    base = _pytriton_dir()
    binary = base / "bin" / "tritonserver"
    if not os.access(binary, os.X_OK):
        raise ServerError(f"{binary}: no tritonserver binary in nvidia-pytriton")
    if not (base / "backends" / "python" / "libtriton_python.so").is_file():
        raise ServerError(f"{base}/backends/python: the python backend is missing")
    _stub_source(base)
    _check_numpy()
    return binary


def _check_numpy() -> None:
    """Refuse numpy 2 in the environment the python backend stub will use."""
    try:
        numpy_major = int(importlib.metadata.version("numpy").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        numpy_major = 0
    if numpy_major >= 2:
        raise ServerError(
            f"numpy {importlib.metadata.version('numpy')} in {sys.prefix}: the python backend stub of "
            "Triton 2.51 corrupts tensors with numpy 2 (pip install 'numpy<2')"
        )


def _stub_source(base: Path) -> Path:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = base / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"{stub}: nvidia-pytriton has no python backend stub for Python {version}")
    return stub


def bundled_backends() -> list[str]:
    """Return the backends the bundled server has (``["python"]`` for nvidia-pytriton 0.7)."""
    return sorted(p.name for p in (_pytriton_dir() / "backends").iterdir() if p.is_dir())


def _cache_root() -> Path:
    override = os.environ.get("EDGEASR_TRITON_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeasr" / "triton"


def prepare_backend_directory() -> Path:
    """Return a backend directory whose ``python/`` holds the backend *and* its stub.

    Copies (never symlinks: the stub must be a real file beside the library) the bundled python
    backend plus the stub for this Python into the per-user cache, once, atomically.

    Returns:
        The directory to pass as ``--backend-directory``.

    Raises:
        ServerError: nvidia-pytriton is missing or incomplete.
    """
    find_tritonserver()
    base = _pytriton_dir()
    try:
        tag = importlib.metadata.version("nvidia-pytriton")
    except importlib.metadata.PackageNotFoundError:
        tag = "unknown"
    target = _cache_root() / f"{tag}-py{sys.version_info.major}.{sys.version_info.minor}" / "backends"
    stub = target / "python" / "triton_python_backend_stub"
    if stub.is_file() and (target / "python" / "libtriton_python.so").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".backends-", dir=target.parent))
    try:
        shutil.copytree(base / "backends" / "python", tmp / "python", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(_stub_source(base), tmp / "python" / "triton_python_backend_stub")
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; use its copy
            if not stub.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def python_models(model_repository: str | os.PathLike) -> list[str]:
    """Return the models of a repository that the bundled server can serve (``backend: "python"``).

    Args:
        model_repository: a Triton model repository.

    Returns:
        Model names, sorted.
    """
    from edgeasr.tritonconfig import CONFIG_FILENAME, read_config

    root = Path(model_repository)
    found = []
    for path in sorted(root.glob(f"*/{CONFIG_FILENAME}")):
        try:
            config = read_config(path)
        except ValueError:
            continue  # not a config Triton would load either
        if config.backend == "python" and not config.platform:
            found.append(path.parent.name)
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _free_ports(bind: str, count: int) -> list[int]:
    """``count`` distinct free ports: every socket stays bound until all are chosen.

    Chosen one at a time, two could come back equal (the kernel may hand the port just released
    out again), and Triton refuses to start with HTTP and gRPC on one port.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((bind, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _parent_death_signal():
    """A ``preexec_fn`` that has the child receive SIGTERM when the process that starts it dies.

    ``prctl(PR_SET_PDEATHSIG)``, looked up in the running process before the fork so that the
    child only calls it; if the parent died before the call, the child stops itself.
    """
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _client_host(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "") else bind


class TritonServer:
    """The bundled ``tritonserver`` serving a model repository's python-backend models.

    Args:
        model_repository: the Triton model repository.
        bind: address to listen on (loopback unless told otherwise).
        grpc_port: gRPC port; 0 picks a free one.
        http_port: HTTP/REST port; 0 picks a free one.
        metrics_port: Prometheus metrics port; 0 picks a free one.
        models: models to load; None = every ``backend: "python"`` model of the repository.
        log_verbose: Triton's ``--log-verbose`` level.
        grpc_bind: address of the gRPC endpoint alone (default: ``bind``); ``edgeasr serve`` keeps
            it on loopback behind its routing front (:mod:`edgeasr.serving.front`).
        metrics_bind: address of the metrics endpoint alone (default: ``bind``); ``edgeasr serve``
            keeps it on loopback behind its own metrics port (:mod:`edgeasr.serving.metrics`).
        binary: a ``tritonserver`` to run instead of the bundled one (NVIDIA's images:
            ``/opt/tritonserver/bin/tritonserver``).
        restrict_model_control: refuse Triton's model-repository API (load, unload, index) on HTTP
            and gRPC to any request without the header ``edgeasr-admin: <admin_token>`` (a random
            token of this server); ``edgeasr serve`` sets it unless ``--allow-model-control``.
        backend_directory: its ``--backend-directory`` (NVIDIA's images: ``/opt/tritonserver/backends``);
            default: the bundled python backend, prepared in the per-user cache.
        die_with_parent: the server gets SIGTERM when this process dies, even by SIGKILL (Linux's
            parent-death signal; the server runs in a session of its own, so nothing else would
            reach it). The signal follows the *thread* that starts the server, so only a program
            whose main thread starts it should ask: ``edgeasr serve`` does.

    Example:
        >>> with TritonServer("triton_models") as server:
        ...     TritonClient(server.grpc_url).transcribe(audio)
    """

    def __init__(
        self,
        model_repository: str | os.PathLike,
        *,
        bind: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        models: Sequence[str] | None = None,
        log_verbose: int = 0,
        grpc_bind: str | None = None,
        metrics_bind: str | None = None,
        binary: str | os.PathLike | None = None,
        backend_directory: str | os.PathLike | None = None,
        restrict_model_control: bool = False,
        die_with_parent: bool = False,
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        self.die_with_parent = bool(die_with_parent)
        self.bind = bind
        self.grpc_bind = grpc_bind or bind
        self.metrics_bind = metrics_bind or bind
        self.admin_token = secrets.token_hex(16) if restrict_model_control else ""
        self.unavailable: dict[str, dict[int, str]] = {}  # versions that did not load, with Triton's reason
        self.binary = Path(binary) if binary else None
        self.backend_directory = Path(backend_directory) if backend_directory else None
        self._ports = {"grpc": int(grpc_port), "http": int(http_port), "metrics": int(metrics_port)}
        self._requested_models = list(models) if models is not None else None
        self.models: list[str] = []
        self.log_verbose = int(log_verbose)
        self.shm_prefix = f"{SHM_PREFIX}edgeasr{os.getpid()}x{next(_counter)}_"
        self._process: subprocess.Popen | None = None
        self._log_dir: Path | None = None
        self._lock = threading.Lock()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def grpc_url(self) -> str:
        """gRPC address for tritonclient, ``"127.0.0.1:PORT"``."""
        return f"{_client_host(self.grpc_bind)}:{self._ports['grpc']}"

    @property
    def http_url(self) -> str:
        """HTTP/REST base address, ``"http://127.0.0.1:PORT"``."""
        return f"http://{_client_host(self.bind)}:{self._ports['http']}"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics address, ``"http://127.0.0.1:PORT/metrics"``."""
        return f"http://{_client_host(self.metrics_bind)}:{self._ports['metrics']}/metrics"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """File holding the server's stdout and stderr (removed after a clean stop)."""
        return self._log_dir / "tritonserver.log" if self._log_dir else None

    def is_running(self) -> bool:
        """Return True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the server log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ------------------------------------------------------------------------------

    def _command(self, binary: Path, backends: Path) -> list[str]:
        cmd = [
            str(binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backends}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--http-address={self.bind}",
            f"--http-port={self._ports['http']}",
            f"--grpc-address={self.grpc_bind}",
            f"--grpc-port={self._ports['grpc']}",
            "--allow-metrics=true",
            f"--metrics-address={self.metrics_bind}",
            f"--metrics-port={self._ports['metrics']}",
            "--allow-gpu-metrics=false",
            "--pinned-memory-pool-byte-size=0",  # CPU only: no CUDA pinned memory
            "--allow-cpu-metrics=true",
            "--model-control-mode=explicit",
            "--disable-auto-complete-config",
            "--strict-readiness=false",  # one broken version must not keep the good ones from serving
            "--exit-on-error=false",
            "--exit-timeout-secs=10",
            f"--log-verbose={self.log_verbose}",
        ]
        if self.admin_token:  # the model-repository API only for whoever holds this server's token
            rule = f"model-repository:{ADMIN_HEADER}={self.admin_token}"
            cmd += [f"--http-restricted-api={rule}", f"--grpc-restricted-protocol={rule}"]
        # models are loaded after start through the repository API (_settle_models), one at a time, so
        # that a model with a broken version can be loaded again without it
        return cmd

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        # The copied stub's RPATH ($ORIGIN/../../../../nvidia_pytriton.libs) no longer resolves.
        try:
            wheel_libs = str(_pytriton_dir().parent.parent / "nvidia_pytriton.libs")
        except ServerError:  # another tritonserver (NVIDIA's image) without the wheel
            wheel_libs = ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, wheel_libs, env.get("LD_LIBRARY_PATH", "")) if p)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("PYTHONPATH", None)
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        return env

    def start(self, timeout_s: float = 60.0) -> TritonServer:
        """Start the server; return once it and every model are ready.

        Args:
            timeout_s: how long to wait for readiness.

        Returns:
            self.

        Raises:
            ServerError: no binary, no python models, or the server died or was not ready in
                time (the message ends with the server's log tail). The process is stopped.
        """
        with self._lock:
            if self.is_running():
                return self
            if self.binary is not None:
                if not os.access(self.binary, os.X_OK):
                    raise ServerError(f"{self.binary}: not an executable tritonserver")
                _check_numpy()
                binary = self.binary
            else:
                binary = find_tritonserver()
            backends = self.backend_directory or prepare_backend_directory()
            if not (backends / "python" / "libtriton_python.so").is_file():
                raise ServerError(f"{backends}/python: no python backend there")
            if not self.model_repository.is_dir():
                raise ServerError(f"{self.model_repository}: no such model repository")
            self.models = (
                self._requested_models if self._requested_models is not None else python_models(self.model_repository)
            )
            if not self.models:
                raise ServerError(
                    f'{self.model_repository}: no models with backend "python" (the bundled server has '
                    f"backends {bundled_backends()})"
                )
            self.remove_stale_shm_files()
            auto_ports = [k for k, v in self._ports.items() if v == 0]
            for attempt in range(3):
                for key, port in zip(auto_ports, _free_ports(self.bind or "127.0.0.1", len(auto_ports)), strict=True):
                    self._ports[key] = port
                self._log_dir = Path(tempfile.mkdtemp(prefix="edgeasr-triton-"))
                with open(self.log_path, "wb") as log:
                    self._process = subprocess.Popen(
                        self._command(binary, backends),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=self._environment(),
                        start_new_session=True,
                        preexec_fn=_parent_death_signal() if self.die_with_parent else None,
                    )
                atexit.register(self.stop)
                try:
                    self._wait_ready(timeout_s)
                    return self
                except ServerError as exc:
                    tail = self.log_tail()
                    self._stop_locked(keep_log=True)
                    port_clash = any(
                        m in tail.lower() for m in ("already in use", "address in use", "at the same address and port")
                    )
                    if port_clash and auto_ports and attempt < 2:
                        # the clash is explained and retried: this attempt's log folder goes with it
                        if self._log_dir is not None:
                            shutil.rmtree(self._log_dir, ignore_errors=True)
                            self._log_dir = None
                        continue
                    raise ServerError(f"{exc}\n--- tritonserver log tail ---\n{tail}") from None
            raise AssertionError("unreachable")

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=2.0) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (OSError, ValueError):
            return 0

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = ["/v2/health/live"]  # Triton is live once its start-up loads are done, good or bad
        while pending:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self._process.returncode} while starting")
            fatal = self._fatal_log_line()
            if fatal:
                raise ServerError(f"tritonserver failed to start: {fatal}")
            if self._get(pending[0]) == 200:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise ServerError(f"tritonserver not ready after {timeout_s:.0f} s (waiting for {pending[0]})")
            time.sleep(0.1)
        self._settle_models()
        missing = [m for m in self.models if self._get(f"/v2/models/{m}/ready") != 200]
        if missing:
            reasons = "; ".join(f"{m} {v}: {r}" for m, vs in self.unavailable.items() for v, r in vs.items())
            raise ServerError(f"tritonserver failed to start: no version of {', '.join(missing)} loads ({reasons})")

    # -- versions that do not load ---------------------------------------------------------------

    def _post(self, path: str, body: dict) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if self.admin_token:
            headers[ADMIN_HEADER] = self.admin_token
        request = urllib.request.Request(self.http_url + path, data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=300) as resp:
                text = resp.read()
                return int(resp.status), json.loads(text) if text.strip() else {}
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return int(exc.code), json.loads(text) if text.strip() else {}
            except ValueError:
                return int(exc.code), {"error": text.decode(errors="replace")}

    def _load(self, model: str, versions: Sequence[int] | None) -> str:
        """Load ``model`` (with only ``versions``: a config override); "" or the reason it failed."""
        from google.protobuf.json_format import MessageToJson

        from edgeasr.tritonconfig import read_config, set_version_policy

        body: dict = {}
        if versions is not None:
            config = set_version_policy(read_config(self.model_repository / model), "specific", versions=versions)
            body = {"parameters": {"config": MessageToJson(config, preserving_proto_field_name=True)}}
        code, doc = self._post(f"/v2/repository/models/{model}/load", body)
        return "" if code == 200 else str(doc.get("error") or f"HTTP {code}").strip().splitlines()[0]

    def _settle_models(self) -> None:
        """Serve every version that loads; record the others in :attr:`unavailable` with Triton's reason.

        Triton loads a model's versions all or nothing: one broken version (a corrupt
        ``model.onnx``, a ``model.py`` that raises at warm-up) unloads the good ones too. When a
        model did not load, each version on disk is tried alone, then the model is loaded with
        those that loaded (a ``version_policy`` override; ``config.pbtxt`` is not touched).
        """
        from edgeasr.tritonconfig import read_config

        self.unavailable = {}
        for model in self.models:
            if not self._load(model, None):
                continue
            config = read_config(self.model_repository / model)
            on_disk = sorted(int(p.name) for p in (self.model_repository / model).iterdir() if p.name.isdigit())
            which = config.version_policy.WhichOneof("policy_choice")
            if which == "specific":
                on_disk = [v for v in on_disk if v in set(config.version_policy.specific.versions)]
            elif which != "all":
                on_disk = on_disk[-max(1, config.version_policy.latest.num_versions or 1) :]
            good, bad = [], {}
            for version in on_disk:
                reason = self._load(model, [version])
                if reason:
                    bad[version] = reason
                else:
                    good.append(version)
            if good and len(good) > 1:
                reason = self._load(model, good)
                if reason:  # the good ones do not load together: serve the newest alone
                    bad.update(dict.fromkeys(good[:-1], reason))
                    good = good[-1:]
                    self._load(model, good)
            if bad:
                self.unavailable[model] = bad

    def _fatal_log_line(self) -> str:
        for line in self.log_tail(200).splitlines():
            if any(marker in line.lower() for marker in _FATAL_LOG):
                return line.strip()
        return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Stop the server (SIGTERM, wait, then SIGKILL) and remove its shared-memory files.

        After a clean exit (code 0) the log directory is removed too; a failed server's log stays.

        Args:
            timeout_s: how long to wait after SIGTERM before killing.

        Returns:
            The server's exit code, or None if it was not started.
        """
        with self._lock:
            return self._stop_locked(timeout_s)

    def _stop_locked(self, timeout_s: float = 15.0, keep_log: bool = False) -> int | None:
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            code = process.returncode
            # Stubs are in the server's session; none must outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                atexit.unregister(self.stop)
        self.remove_shm_files()
        if code == 0 and not keep_log and self._log_dir is not None:  # a failed server's log stays for inspection
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None
        return code

    def shm_files(self) -> list[Path]:
        """Return this server's python-backend shared-memory files now in ``/dev/shm``."""
        if not SHM_DIR.is_dir():
            return []
        return sorted(SHM_DIR.glob(self.shm_prefix + "*"))

    @staticmethod
    def remove_stale_shm_files() -> list[Path]:
        """Remove the shared-memory files of edgeasr servers whose process no longer exists.

        A server killed with its whole process tree (SIGKILL) cannot clean up; its regions carry
        the pid of the process that ran it (``...edgeasr<pid>x<n>_``), so the next start finds
        and removes them. Regions of live processes are left alone.
        """
        removed: list[Path] = []
        if not SHM_DIR.is_dir():
            return removed
        for path in SHM_DIR.glob(SHM_PREFIX + "edgeasr*"):
            match = re.match(re.escape(SHM_PREFIX) + r"edgeasr(\d+)x\d+_", path.name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed

    def remove_shm_files(self) -> list[Path]:
        """Remove this server's shared-memory files (safe while it is stopped)."""
        removed = []
        for path in self.shm_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for the server process to exit; return its exit code (None on timeout)."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def serve_forever(self, timeout_s: float = 60.0, on_ready: Callable[[TritonServer], None] | None = None) -> int:
        """Start (if needed) and block until SIGINT/SIGTERM or the server dies; then stop cleanly.

        Args:
            timeout_s: readiness timeout for the start.
            on_ready: called once the server and its models are ready (e.g. to print the URLs).

        Returns:
            0 after a signal, else the exit code of the server that died.

        Raises:
            ServerError: the server did not start.
        """
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            self.start(timeout_s)
            if on_ready is not None:
                on_ready(self)
            while not stop.wait(0.5):
                if not self.is_running():
                    code = self._process.returncode if self._process is not None else 1
                    print(f"tritonserver died (exit code {code}):\n{self.log_tail()}", file=sys.stderr)
                    self.stop()
                    return int(code or 1)
            self.stop()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"TritonServer({str(self.model_repository)!r}, grpc={self.grpc_url}, {state})"


# -- edgeasr serve ----------------------------------------------------------------------------------
