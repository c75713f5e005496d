"""A real Airflow 3 stack on loopback, for the integration tests and for trying a deployment without Docker.

PostgreSQL (Debian's packages, through scripts/start_postgres.sh) holds the metadata; `airflow db migrate`
prepares it; the scheduler (LocalExecutor), dag-processor and api-server run as child processes with their
own AIRFLOW_HOME. Every process is started in its own process group and `stop()` ends those groups and any
descendant that left them, then stops PostgreSQL: nothing outlives the stack.

    python -m rapport.orchestration.airflow_stack up [WORK_DIR]     start, print the UI address, stop on Ctrl-C
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapport.core.config import PROJECT_ROOT

START_POSTGRES = PROJECT_ROOT / "scripts" / "start_postgres.sh"
COMPONENTS = ("scheduler", "dag-processor", "api-server")


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(home: Path, db_url: str, api_port: int, warehouse_dir: Path, extra: dict[str, str] | None = None):
    """The environment every process of the stack shares (the rapport_* settings included)."""
    api = f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RAPPORT_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            # Airflow 3.3 also opens an async engine; it would pick asyncpg (not installed) for a
            # postgresql URL. psycopg 3 does async too.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            # Scheduler-issued task tokens are checked by the api-server: both need the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            # pick up new DAG files quickly; the default waits minutes between directory scans
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "DO_NOT_TRACK": "1",
            "RAPPORT_WAREHOUSE_DIR": str(warehouse_dir),
        }
    )
    env.update(extra or {})
    return env


def start_postgres(pg_dir: Path, port: int) -> str:
    """Start a throwaway PostgreSQL cluster in pg_dir on loopback; returns its SQLAlchemy URL."""
    proc = subprocess.run(["bash", str(START_POSTGRES), str(pg_dir), str(port)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise StackError(f"PostgreSQL could not start (scripts/start_postgres.sh exited {proc.returncode}):\n"
                         f"{proc.stderr[-3000:]}")  # fmt: skip
    return proc.stdout.strip().splitlines()[-1]


def stop_postgres(pg_dir: Path) -> None:
    subprocess.run(["bash", str(START_POSTGRES), "stop", str(pg_dir)], capture_output=True, timeout=120)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """All processes below pid (from /proc), including those that started a session of their own."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def stop_process_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group proc leads and every descendant, then SIGKILL what is left."""
    pids = [proc.pid, *descendants(proc.pid)]
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.2)
    pids += [p for p in descendants(proc.pid) if p not in pids]
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@dataclass
class AirflowStack:
    home: Path
    env: dict[str, str]
    api_url: str
    pg_dir: Path | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def airflow(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run the airflow command line against this stack."""
        proc = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        if check and proc.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-4000:]}")  # fmt: skip
        return proc

    def start(self, component: str) -> None:
        args = [component]
        if component == "api-server":
            args += ["--port", self.api_url.rsplit(":", 1)[1], "--host", "127.0.0.1"]
        log = open(self.home / f"{component}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs[component] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended as one in stop()
        )
        log.close()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise StackError(f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, component: str, chars: int = 4000) -> str:
        path = self.home / f"{component}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            stop_process_group(self.procs[name])
        self.procs.clear()
        if self.pg_dir is not None:
            stop_postgres(self.pg_dir)

    def client(self) -> ApiClient:
        return ApiClient(self.api_url)


def start_stack(
    home: Path,
    warehouse_dir: Path,
    *,
    pg_dir: Path,
    extra_env: dict[str, str] | None = None,
    components: tuple[str, ...] = COMPONENTS,
    pools: dict[str, int] | None = None,
) -> AirflowStack:
    """PostgreSQL, `airflow db migrate`, the pools, then the components; stops what it started on error."""
    home.mkdir(parents=True, exist_ok=True)
    db_url = start_postgres(pg_dir, free_port())
    api_port = free_port()
    stack = AirflowStack(home, airflow_env(home, db_url, api_port, warehouse_dir, extra_env),
                         f"http://127.0.0.1:{api_port}", pg_dir)  # fmt: skip
    try:
        stack.airflow("db", "migrate", timeout=600)
        for name, slots in (pools or {}).items():
            stack.airflow("pools", "set", name, str(slots), "rapport: one writer of the working DuckDB file")
        for component in components:
            stack.start(component)
        if "api-server" in components:
            stack.client().wait_until_up(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


@contextmanager
def running_stack(home: Path, warehouse_dir: Path, **kwargs: Any) -> Iterator[AirflowStack]:
    stack = start_stack(home, warehouse_dir, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


class ApiClient:
    """The few REST API v2 calls the tests need; authenticates with the simple auth manager's token."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=30)
        self._token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            resp = self._http.get("/auth/token")
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._http.request(method, f"/api/v2{path}", headers=self._headers(), **kwargs)
        if resp.status_code >= 400:
            raise StackError(f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    def wait_until_up(self, stack: AirflowStack | None = None, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stack is not None:
                stack.check_alive()
            with suppress(httpx.HTTPError):
                if self._http.get("/api/v2/version").status_code == 200:
                    return
            time.sleep(1)
        raise StackError(f"the api-server did not answer on {self.base_url} within {timeout} s")

    def wait_for_dags(self, dag_ids: list[str], stack: AirflowStack | None = None, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while time.monotonic() < deadline:
            if stack is not None:
                stack.check_alive()
            errors = self.request("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise StackError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            known = {d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 100}).get("dags", [])}
            missing = [d for d in dag_ids if d not in known]
            if not missing:
                return
            time.sleep(2)
        raise StackError(f"the dag-processor did not register {missing} within {timeout} s")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, *, logical_date: str | None, conf: dict[str, Any] | None = None,
                data_interval: tuple[str, str] | None = None) -> str:  # fmt: skip
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if data_interval:
            body["data_interval_start"], body["data_interval_end"] = data_interval
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})[
            "dag_runs"
        ]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        from urllib.parse import quote

        tis = self.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                           params={"limit": 200})["task_instances"]  # fmt: skip
        return {ti["task_id"]: ti["state"] for ti in tis}

    def wait_for_runs(self, dag_id: str, count: int, stack: AirflowStack | None = None, timeout: float = 600,
                      run_ids: list[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Wait until `count` runs of dag_id (or the given run ids) have finished; returns them."""
        deadline = time.monotonic() + timeout
        finished: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if stack is not None:
                stack.check_alive()
            runs = [r for r in self.runs(dag_id) if run_ids is None or r["dag_run_id"] in run_ids]
            finished = [r for r in runs if r["state"] in ("success", "failed")]
            if len(finished) >= count:
                return finished
            time.sleep(3)
        raise StackError(f"{dag_id}: {len(finished)} of {count} runs finished within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from rapport.orchestration.dag_policy import warehouse_pool
    from rapport.orchestration.dbt_tasks import ensure_manifest

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "up":
        print(__doc__)
        return 2
    work = Path(args[1] if len(args) > 1 else tempfile.mkdtemp(prefix="rapport-airflow-")).resolve()
    warehouse = Path(os.environ.get("RAPPORT_WAREHOUSE_DIR", "./warehouse")).resolve()
    ensure_manifest()
    pool = warehouse_pool()
    # not under WORK_DIR: the server runs as the `postgres` user, who must be able to reach the directory
    pg_dir = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
    with running_stack(work / "airflow", warehouse, pg_dir=pg_dir, pools={pool: 1} if pool else None) as s:
        print(f"Airflow UI: {s.api_url}  (AIRFLOW_HOME={s.home}; Ctrl-C stops everything)", flush=True)
        with suppress(KeyboardInterrupt):
            while True:
                s.check_alive()
                time.sleep(2)
    import shutil

    shutil.rmtree(pg_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
