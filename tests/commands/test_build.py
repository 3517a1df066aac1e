"""`mlops build` on the real Docker Engine and a real registry, with small components."""

from __future__ import annotations

import json

import pytest

from tests.conftest import mlops_yaml, tiny_component

pytestmark = pytest.mark.usefixtures("docker_engine")


def by_component(record: dict) -> dict[str, dict]:
    return {b["component"]: b for b in record["builds"]}


@pytest.fixture
def three(project, registry):
    server, ns = registry
    files = {
        "mlops.yaml": mlops_yaml(ns),
        "libs/shared/util.py": "VALUE = 1\n",
        **tiny_component("alpha", test='["python3", "/app/main.py"]'),
        **tiny_component("beta", extra="depends_on: [libs/shared]\n"),
        **tiny_component("gamma", extra="depends_on: [libs/shared]\n"),
    }
    return project(files), server, ns


def test_first_build_pushes_all_and_digests_match_registry(three, tmp_path):
    proj, server, ns = three
    out = tmp_path / "build.json"
    result = proj.run("build", "--output", str(out))
    assert result.code == 0, result.err
    record = json.loads(out.read_text())
    assert record["source_commit"] == proj.git("rev-parse", "HEAD")
    builds = by_component(record)
    assert set(builds) == {"alpha", "beta", "gamma"}
    short = record["source_commit"][:7]
    for name, entry in builds.items():
        repo = f"{ns.split('/', 1)[1]}/{name}"
        assert entry["built"] is True and entry["pushed"] is True
        assert entry["image"] == f"{ns}/{name}"
        assert entry["tags"] == ["0.1.0", f"0.1.0-{short}", "ih-" + entry["input_hash"][:20]]
        for tag in entry["tags"]:
            assert server.digest(repo, tag) == entry["digest"], (name, tag)
    assert proj.status() == ""  # the build wrote nothing into the work tree


def test_second_run_reuses_everything(three):
    proj, server, ns = three
    first = proj.run("build", "--json")
    assert first.code == 0, first.err
    second = proj.run("build", "--json")
    assert second.code == 0, second.err
    builds = by_component(second.json)
    assert all(b["built"] is False and b["status"] == "reused" for b in builds.values())
    assert {n: b["digest"] for n, b in builds.items()} == {
        n: b["digest"] for n, b in by_component(first.json).items()
    }
    assert "building" not in second.err


def test_changing_one_file_rebuilds_only_that_component(three):
    proj, _server, _ns = three
    assert proj.run("build").code == 0
    proj.write({"components/alpha/src/main.py": "print('alpha v2')\n"})
    proj.commit("alpha v2")
    result = proj.run("build", "--json")
    assert result.code == 0, result.err
    built = {n for n, b in by_component(result.json).items() if b["built"]}
    assert built == {"alpha"}


def test_uncommitted_edit_counts_and_marks_the_tag_dirty(three):
    proj, _server, _ns = three
    assert proj.run("build").code == 0
    proj.write({"components/beta/src/main.py": "print('edited, not committed')\n"})
    result = proj.run("build", "--json")
    assert result.code == 0, result.err
    beta = by_component(result.json)["beta"]
    assert beta["built"] is True
    assert beta["tags"][1].endswith("-dirty")


def test_changing_depends_on_rebuilds_exactly_its_dependents(three):
    proj, _server, _ns = three
    assert proj.run("build").code == 0
    proj.write({"libs/shared/util.py": "VALUE = 2\n"})
    proj.commit("shared change")
    result = proj.run("build", "--json")
    assert result.code == 0, result.err
    built = {n for n, b in by_component(result.json).items() if b["built"]}
    assert built == {"beta", "gamma"}


def test_failing_test_stops_only_that_push(project, registry, tmp_path):
    server, ns = registry
    proj = project({
        "mlops.yaml": mlops_yaml(ns),
        **tiny_component("good", test='["python3", "-c", "print(1)"]'),
        **tiny_component("bad", test='["python3", "-c", "raise SystemExit(3)"]'),
    })
    out = tmp_path / "build.json"
    result = proj.run("build", "--output", str(out))
    assert result.code == 1
    assert "1 of 2 components failed; bad: test command exited 3" in result.err
    builds = by_component(json.loads(out.read_text()))
    assert builds["bad"]["status"] == "failed" and builds["bad"]["pushed"] is False
    assert builds["bad"]["digest"] is None
    assert builds["good"]["pushed"] is True
    repo_ns = ns.split("/", 1)[1]
    assert server.tags(f"{repo_ns}/bad") == []
    assert server.digest(f"{repo_ns}/good", "0.1.0") == builds["good"]["digest"]


def test_a_flaky_test_in_the_image_is_not_retried_into_a_pass(project, registry, tmp_path):
    """README: "A test that fails inside its image ... [is] not retried into a pass". The test
    fails on its first run and would pass on the second (a server on 127.0.0.1 counts its
    runs; builds use the host network), so one retry would turn the build green."""
    import http.server
    import threading

    runs: list[str] = []

    class Counter(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            runs.append(self.path)
            body = b"fail" if len(runs) == 1 else b"pass"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/run"
    flaky = ("import sys, urllib.request; "
             f"sys.exit(0 if urllib.request.urlopen('{url}').read() == b'pass' else 3)")
    try:
        registry_server, ns = registry
        proj = project({"mlops.yaml": mlops_yaml(ns),
                        **tiny_component("flaky", test=json.dumps(["python3", "-c", flaky]))})
        result = proj.run("build", "--output", str(tmp_path / "build.json"))
    finally:
        server.shutdown()
    assert result.code == 1 and "flaky: test command exited 3" in result.err, result.err
    assert runs == ["/run"]  # run once: a retry would have passed
    assert registry_server.tags(f"{ns.split('/', 1)[1]}/flaky") == []


def test_dry_run_plans_without_building(three):
    proj, server, ns = three
    result = proj.run("build", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = {p["component"]: p for p in result.json["plan"]}
    assert {p["action"] for p in plan.values()} == {"build"}
    assert "no image tagged ih-" in plan["alpha"]["reason"]
    assert server.tags(f"{ns.split('/', 1)[1]}/alpha") == []
    assert proj.run("build").code == 0
    again = proj.run("build", "--dry-run")
    assert again.code == 0
    assert "0 to build, 3 to reuse" in again.out


def test_named_components_and_changed_since(three):
    proj, _server, _ns = three
    base = proj.git("rev-parse", "HEAD")
    only = proj.run("build", "alpha", "--json")
    assert [b["component"] for b in only.json["builds"]] == ["alpha"]
    proj.write({"components/gamma/src/main.py": "print('g2')\n"})
    proj.commit("gamma change")
    changed = proj.run("build", "--changed-since", base, "--dry-run", "--json")
    assert changed.code == 0, changed.err
    assert [p["component"] for p in changed.json["plan"]] == ["gamma"]


def test_no_push_builds_locally_only(three):
    proj, server, ns = three
    result = proj.run("build", "--no-push", "beta", "--json")
    assert result.code == 0, result.err
    beta = result.json["builds"][0]
    assert beta["built"] is True and beta["pushed"] is False and beta["digest"] is None
    assert server.tags(f"{ns.split('/', 1)[1]}/beta") == []


def test_build_arg_override_changes_the_hash(three):
    proj, _server, _ns = three
    plain = proj.run("build", "alpha", "--dry-run", "--json").json["plan"][0]
    override = proj.run("build", "alpha", "--dry-run", "--json",
                        "--build-arg", "EXTRA=1").json["plan"][0]
    assert plain["input_hash"] != override["input_hash"]


def test_untracked_files_stay_out_of_the_image(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns),
                    **tiny_component("solo", test='["python3", "-c", '
                                     '"import os; assert not os.path.exists(\'/app/secret.txt\')"]')})
    proj.write({"components/solo/src/secret.txt": "untracked\n"})
    result = proj.run("build", "--no-push")
    assert result.code == 0, result.err
