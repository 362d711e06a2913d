"""Model backends: the native supervisor (with a stand-in server), degraded health, vLLM launcher."""
import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time

import httpx

from app.backends.native import server_command
from app.backends.supervisor import ProcessSupervisor
from app.backends.vllm_launcher import main as launcher_main, vllm_command
from app.core.config import Settings
from model_runtime.server.cli import add_arguments
from tests.app.conftest import STAND_IN, auth, free_port, start_app, stop_app


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _supervisor(tmp_path, command, **kw) -> tuple[ProcessSupervisor, int]:
    port = free_port()
    cmd = [part.format(port=port) for part in command]
    sup = ProcessSupervisor(cmd, f"http://127.0.0.1:{port}/health", tmp_path / "server.log",
                            tmp_path / "run" / "server.json", health_interval_s=0.2, min_backoff_s=0.1, max_backoff_s=0.5, **kw)
    return sup, port


def test_supervisor_restarts_a_crashed_server(tmp_path, caplog):
    async def scenario() -> None:
        sup, port = _supervisor(tmp_path, [sys.executable, str(STAND_IN), "--port", "{port}"])
        await sup.start()
        try:
            await _wait_for(lambda: sup.state == "ready")
            first_pid = sup.pid
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/v1/models")).status_code == 200
            os.kill(first_pid, signal.SIGKILL)
            await _wait_for(lambda: sup.restarts == 1)
            await _wait_for(lambda: sup.state == "ready")
            assert sup.pid != first_pid
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
        finally:
            await sup.stop()
        assert sup.state == "stopped"
        async with httpx.AsyncClient() as client:  # the server is gone after stop()
            try:
                await client.get(f"http://127.0.0.1:{port}/health", timeout=1)
                raise AssertionError("server still answering after stop()")
            except httpx.ConnectError:
                pass

    with caplog.at_level(logging.INFO, logger="app.supervisor"):
        asyncio.run(scenario())
    down = [r for r in caplog.records if "is down" in r.getMessage()]
    assert down and "exited with code -9" in down[0].getMessage()


def _stand_in(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(STAND_IN), "--port", str(port)], start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("stand-in server did not start")


def _stand_in_supervisor(tmp_path, port: int) -> ProcessSupervisor:
    return ProcessSupervisor([sys.executable, str(STAND_IN), "--port", str(port)], f"http://127.0.0.1:{port}/health",
                             tmp_path / "server.log", tmp_path / "run" / "server.json", health_interval_s=0.2,
                             min_backoff_s=0.1)


def test_supervisor_stops_the_orphan_a_crashed_app_left(tmp_path):
    """A server whose app died (its pidfile says so) is stopped before ours starts on the port."""
    port = free_port()
    orphan = _stand_in(port)
    dead_app = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_app.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "server.json").write_text(json.dumps({"pid": orphan.pid, "app_pid": dead_app.pid,
                                                              "port": port, "command": []}))

    async def scenario() -> None:
        sup = _stand_in_supervisor(tmp_path, port)
        await sup.start()
        try:
            assert orphan.wait(timeout=10) is not None  # stopped before ours was started
            await _wait_for(lambda: sup.state == "ready")
            health = httpx.get(f"http://127.0.0.1:{port}/health").json()
            assert health["pid"] == sup.pid != orphan.pid
            assert json.loads((tmp_path / "run" / "server.json").read_text())["pid"] == sup.pid
        finally:
            await sup.stop()
        assert not (tmp_path / "run" / "server.json").exists()

    try:
        asyncio.run(scenario())
    finally:
        orphan.kill()


def test_a_foreign_server_on_the_port_is_never_taken_for_ours(tmp_path):
    """Once an orphan answered /health, so the app reported ready while its own server crash-looped."""
    port = free_port()
    foreign = _stand_in(port)

    async def scenario() -> None:
        sup = _stand_in_supervisor(tmp_path, port)
        await sup.start()
        try:
            await _wait_for(lambda: sup.state == "port_in_use")
            await asyncio.sleep(1.0)
            assert sup.state == "port_in_use" and f"127.0.0.1:{port} is taken" in sup.detail
            assert sup.pid is None  # nothing was started to crash-loop
        finally:
            await sup.stop()

    try:
        asyncio.run(scenario())
        assert foreign.poll() is None  # not ours: left alone
    finally:
        foreign.kill()


def test_supervisor_reports_a_server_that_exits_at_once(tmp_path, caplog):
    async def scenario() -> ProcessSupervisor:
        sup, _ = _supervisor(tmp_path, [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"])
        await sup.start()
        try:
            await _wait_for(lambda: sup.restarts >= 2)
        finally:
            await sup.stop()
        return sup

    with caplog.at_level(logging.ERROR, logger="app.supervisor"):
        asyncio.run(scenario())
    down = [r for r in caplog.records if "is down" in r.getMessage()]
    assert "exited with code 3" in down[0].getMessage()
    assert "no model here" in down[0].log_tail  # the server's own output is in the log record


def test_supervisor_restarts_a_server_that_never_becomes_healthy(tmp_path):
    async def scenario() -> None:
        sup, _ = _supervisor(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], start_timeout_s=0.5)
        await sup.start()
        try:
            await _wait_for(lambda: sup.restarts >= 1)
            assert "not ready after 0.5 s" in sup.detail or sup.state == "starting"
        finally:
            await sup.stop()

    asyncio.run(scenario())


def test_missing_model_dir_gives_degraded_health(tmp_path):
    server = start_app(tmp_path, f"sqlite:///{tmp_path / 'app.db'}",
                       {"MODEL_COMMAND": "", "MODEL_PATH": str(tmp_path / "no-such-model")}, wait_model=False)
    try:
        response = httpx.get(f"{server.url}/health")
        health = response.json()
        assert response.status_code == 503  # not ready: load balancers keep traffic away
        assert health["status"] == "degraded" and health["database"] == "ok"
        assert health["model"]["state"] == "missing_model"
        proxied = httpx.get(f"{server.url}/v1/models", headers=auth(server.admin_key))
        assert proxied.status_code == 502 and "missing_model" in proxied.json()["error"]["message"]
    finally:
        stop_app(server)
    assert "has no config.json" in server.log()


def test_vllm_command_has_parallelism_mtp_and_tool_parser(capsys):
    settings = Settings(model_backend="vllm", model_base_url="http://model:8000/v1",
                        vllm_tensor_parallel_size=8, vllm_pipeline_parallel_size=2, vllm_max_model_len=65536)
    cmd = vllm_command(settings)
    assert cmd[:3] == ["vllm", "serve", "deepseek-ai/DeepSeek-V3"]
    flags = dict(zip(cmd, cmd[1:], strict=False))
    assert flags["--tensor-parallel-size"] == "8" and flags["--pipeline-parallel-size"] == "2"
    assert "--enable-expert-parallel" in cmd
    assert flags["--speculative-config"] == '{"method": "deepseek_mtp", "num_speculative_tokens": 1}'
    assert flags["--tool-call-parser"] == "deepseek_v3" and "--enable-auto-tool-choice" in cmd
    assert flags["--max-model-len"] == "65536"
    assert flags["--chat-template"].endswith("tool_chat_template_deepseekv3.jinja")
    assert flags["--served-model-name"] == "deepseek-ai/DeepSeek-V3"
    assert "--speculative-config" not in vllm_command(settings.model_copy(update={"vllm_speculative_tokens": 0}))
    assert launcher_main([]) == 0
    assert capsys.readouterr().out.startswith("vllm serve deepseek-ai/DeepSeek-V3 ")


def test_native_command_keeps_compiled_steps_under_var_dir_or_runs_eagerly(tmp_path):
    """The native server's captured decode steps compile into VAR_DIR/compile-cache (kept between
    restarts); MODEL_ENFORCE_EAGER turns them off. `serve` accepts both command lines."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    captured = server_command(Settings(var_dir=tmp_path), 8001)
    args = parser.parse_args(captured[4:])
    assert args.compile_cache_dir == str(tmp_path / "compile-cache") and not args.enforce_eager
    custom = server_command(Settings(var_dir=tmp_path, model_compile_cache_dir=tmp_path / "inductor"), 8001)
    assert parser.parse_args(custom[4:]).compile_cache_dir == str(tmp_path / "inductor")
    eager = parser.parse_args(server_command(Settings(var_dir=tmp_path, model_enforce_eager=True), 8001)[4:])
    assert eager.enforce_eager and eager.compile_cache_dir is None
