"""schemathesis against the model server's OpenAPI document, over real HTTP: no 5xx.

A 128-token window keeps each generated completion short. schemathesis generates valid UTF-8
only, so the lone-surrogate and deep-nesting attacks have their own tests in test_server.py.
"""
from tests.model_runtime.server.conftest import start_server, stop_server
from tests.support.fuzz import run_schemathesis, summary


def test_no_server_errors_under_fuzzing(server_checkpoint, tmp_path):
    server = start_server(server_checkpoint, tmp_path / "server.log", "--max-model-len", "128")
    try:
        report = run_schemathesis(f"{server.base_url}/openapi.json", tmp_path / "report")
    finally:
        stop_server(server)
    print(summary(report))
    assert report["operations"]["tested"] >= 5 and report["test_cases"]["generated"] >= 50, summary(report)
    assert report["failures"] == [] and report["errors"] == [], report["output"]
