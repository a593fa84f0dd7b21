"""The GitHub Actions workflow that tests the course and publishes the book to GitHub Pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
ON_MAIN = "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"


def _actionlint(path: Path) -> subprocess.CompletedProcess:
    if shutil.which("actionlint") is None:
        pytest.skip("actionlint is not installed (requirements.txt pins it: bash scripts/setup.sh)")
    return subprocess.run(["actionlint", "-no-color", str(path)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def test_actionlint_accepts_the_workflow():
    result = _actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_copy(tmp_path):
    """The check above can fail: a reference to a step that does not exist is reported."""
    broken = tmp_path / "book.yml"
    broken.write_text(WORKFLOW.read_text().replace("steps.deployment.", "steps.deploymnt."))
    result = _actionlint(broken)
    assert result.returncode != 0 and "deploymnt" in result.stdout


def test_every_push_and_pull_request_runs_the_tests(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "pull_request" in triggers and "workflow_dispatch" in triggers
    build = workflow["jobs"]["build"]
    assert build["runs-on"] == "ubuntu-latest" and build["timeout-minutes"] > 0
    python = _steps_using(build, "actions/setup-python")[0]["with"]
    assert str(python["python-version"]) == "3.11" and python["cache"] == "pip"
    runs = [step["run"].strip() for step in build["steps"] if "run" in step]
    assert runs == ["bash scripts/test.sh"]
    assert "write" not in build["permissions"].values()  # it runs the pull request's code


def test_only_main_deploys_the_built_book(workflow):
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    upload = _steps_using(build, "actions/upload-pages-artifact")
    configure = _steps_using(build, "actions/configure-pages")
    assert len(upload) == 1 and len(configure) == 1
    assert upload[0]["with"]["path"] == "_build/html"  # where test.sh's `jupyter-book build .` writes
    assert "jupyter-book build . " in (ROOT / "scripts" / "test.sh").read_text()
    assert upload[0]["if"] == configure[0]["if"] == deploy["if"] == ON_MAIN
    # the upload comes after the tests, so a failing test publishes nothing
    assert build["steps"].index(upload[0]) > [s.get("run") for s in build["steps"]].index(
        "bash scripts/test.sh")
    assert deploy["needs"] in ("build", ["build"]) and deploy["timeout-minutes"] > 0
    (step,) = _steps_using(deploy, "actions/deploy-pages")
    assert deploy["environment"] == {
        "name": "github-pages", "url": f"${{{{ steps.{step['id']}.outputs.page_url }}}}"}
    assert deploy["permissions"]["pages"] == "write"
    assert deploy["permissions"]["id-token"] == "write"
    assert deploy["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_site_links_agree_with_the_repository():
    """A fork changes repository.url and html.baseurl together, and the README's Colab link."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", config["repository"]["url"])
    assert match, f"_config.yml: repository.url {config['repository']['url']!r} is no GitHub URL"
    owner, repo = match.groups()
    assert config["html"]["baseurl"] == f"https://{owner}.github.io/{repo}/"
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    branch = config["repository"]["branch"]
    colab = f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/labs/"
    assert colab in (ROOT / "README.md").read_text()
