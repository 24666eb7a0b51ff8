"""Schemathesis against the app's own OpenAPI schema, in process: no 500s, every response matches the schema."""

from __future__ import annotations

import json
import time

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import ROOT, hypothesis_profile, make_client, wait_ready

EXAMPLES_PER_OPERATION = 30


def test_api_never_500_and_matches_schema(tiny_store, tmp_path):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    counts: dict[str, int] = {}
    # The lifespan runs once here; schemathesis's in-process calls reuse the loaded registry and vote store.
    with make_client(tiny_store, tmp_path, admin_token="fuzz-token") as client:
        wait_ready(client)
        schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        # Schemathesis runs the app's lifespan once more on its own event loop, which loads a second registry:
        # start it with one call and wait until those models are warm too, or /readyz answers its documented 503.
        schema["/healthz"]["GET"].Case().call()
        deadline = time.monotonic() + 120
        while not client.app.state.registry.ready and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.app.state.registry.ready
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"

            @given(case=operation.as_strategy())
            # derandomize and the example database come from the profile (tests/conftest.py): the same cases in CI,
            # new draws under HYPOTHESIS_PROFILE=explore (which also draws more of them)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION * (10 if hypothesis_profile() == "explore" else 1),
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                counts[label] = counts.get(label, 0) + 1
                case.call_and_validate(checks=checks)

            run()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "fuzz.json").write_text(
        json.dumps({"total": sum(counts.values()), "per_operation": counts}, indent=1)
    )
    print(f"\nschemathesis: {sum(counts.values())} cases over {len(counts)} operations")
    assert len(counts) >= 10 and sum(counts.values()) >= 100
