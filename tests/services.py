"""Real services the suite runs against, started on loopback once per test run and stopped after:
a Ray head (``ray start --head``) and a throwaway PostgreSQL server (initdb and pg_ctl in a
temporary folder). Where one cannot start, ``Unavailable`` says why, and its tests skip with
that reason; scripts/setup_services.sh installs PostgreSQL from the distribution's packages."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Unavailable(Exception):
    """A service that cannot run here; the message is the reason its tests skip."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(cmd[:3])} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done


class RayHead:
    """A one-node Ray cluster of ``cpus`` CPUs on loopback. Its workers import this checkout (tests included)."""

    def __init__(self, *, cpus: int = 2) -> None:
        ray = Path(sys.executable).with_name("ray")
        if not ray.is_file():
            raise Unavailable("Ray is not installed (pip install 'prunesearch[ray]'; `make install` does)")
        self.ray = str(ray)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        _run(
            [
                self.ray,
                "start",
                "--head",
                f"--port={self.port}",
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={cpus}",
                "--include-dashboard=false",
                "--object-store-memory=500000000",  # 500 MB: a MiniLM fitness fits
                "--disable-usage-stats",
            ],
            env=env,
            timeout=180,
        )

    def stop(self) -> None:
        subprocess.run([self.ray, "stop", "--force"], capture_output=True, timeout=120)


class Postgres:
    """A PostgreSQL server of this test run's own, trust authentication on 127.0.0.1, fsync off."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [shutil.which("pg_ctl") or ""]
        if not found[-1]:
            raise Unavailable(
                "PostgreSQL server binaries not found: run scripts/setup_services.sh (installs postgresql)"
            )
        self.bin = Path(found[-1]).parent
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("the PostgreSQL driver is not installed (pip install 'prunesearch[postgres]')") from None
        # PostgreSQL refuses to run as root: as root, the server runs as the distribution's postgres user
        self.as_user: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="prunesearch-pg-"))
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            if shutil.which("runuser") is None or _user_missing("postgres"):
                raise Unavailable("running as root without a 'postgres' user to run the server as")
            shutil.chown(self.folder, user="postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        data = self.folder / "data"
        self._pg("initdb", "-D", str(data), "-U", "prunesearch", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"), "-w", "-o", options, "start")
        self.data = data
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "prunesearch", "prunesearch")
        self.url = f"postgresql://prunesearch@127.0.0.1:{self.port}/prunesearch"

    def _pg(self, tool: str, *args: str) -> None:
        _run([*self.as_user, str(self.bin / tool), *args], timeout=120, cwd=self.folder)

    def new_database(self, name: str) -> str:
        """The URL of a fresh, empty database on this server."""
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "prunesearch", name)
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _user_missing(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return True
    return False
