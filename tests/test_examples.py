"""The cloud examples run, and their notebooks hold the scripts' cells.

examples/sagemaker and examples/databricks run as subprocesses against a real ``cloudsdk
server`` process and a moto server, as a notebook would: the API key in Secrets Manager or
Parameter Store under the name of an assumed IAM role (whose credentials only the child
process gets), a ``/dbfs/mnt/...`` mount stood in for by a temporary directory.

Each script is a ``# %%`` script; its ``.ipynb`` is generated from it by :func:`notebook`.
After editing a script, regenerate the notebooks with ``python -m tests.test_examples``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloudsdk
from cloudsdk.demo_data import generate_features
from tests import aws

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "sagemaker": ROOT / "examples" / "sagemaker" / "sagemaker_featurestore.py",
    "databricks": ROOT / "examples" / "databricks" / "databricks_featurestore.py",
}
ROLE = "ExampleNotebookRole"
N_TEAMS = 60
RUN_TIMEOUT_S = 90
ALLOW_READ = {  # the role's policy (moto evaluates actions against "*", not the ARNs)
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameter"],
                   "Resource": "*"}],
}

moto_server = aws.moto_server
aws_env = aws.aws_env


# --- notebooks ---------------------------------------------------------------------------------

_CELL = re.compile(r"^# %%(?P<rest>.*)$")


def script_cells(path: Path) -> list[tuple[str, str]]:
    """The notebook cells of a ``# %%`` script, as (cell type, source).

    The text before the first ``# %%`` (the script's docstring) and cells whose marker line
    says ``script only`` are left out; ``# %% [markdown]`` cells lose their ``# `` prefixes.
    """
    cells: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _CELL.match(line)
        if m:
            rest = m["rest"].strip()
            kind = "markdown" if rest == "[markdown]" else "skip" if rest.startswith("script only") else "code"
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [re.sub(r"^# ?", "", line) for line in lines]
        source = "\n".join(lines).strip("\n")
        if kind != "skip" and source:
            out.append((kind, source))
    return out


def notebook(path: Path) -> dict[str, Any]:
    """The nbformat-4 notebook of a ``# %%`` script (no outputs)."""
    cells = []
    for i, (kind, source) in enumerate(script_cells(path)):
        lines = source.splitlines(keepends=True)
        cell: dict[str, Any] = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": lines}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebooks() -> None:
    """Regenerate each example's ``.ipynb`` from its script."""
    for script in SCRIPTS.values():
        text = json.dumps(notebook(script), indent=1, ensure_ascii=False) + "\n"
        script.with_suffix(".ipynb").write_text(text, encoding="utf-8")
        print("wrote", script.with_suffix(".ipynb").relative_to(ROOT))


@pytest.mark.parametrize("example", sorted(SCRIPTS))
def test_notebook_holds_the_scripts_cells(example: str) -> None:
    script = SCRIPTS[example]
    nb = json.loads(script.with_suffix(".ipynb").read_text(encoding="utf-8"))
    assert nb == notebook(script), "regenerate the notebooks: python -m tests.test_examples"
    assert nb["nbformat"] == 4
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("code", "markdown")
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell["id"])
        assert all(isinstance(line, str) for line in cell["source"])
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    compile(code, f"{example}.ipynb", "exec")  # the notebook's code is valid Python
    assert "argparse" not in code  # the command line is the script's alone
    assert re.search(r"fs\.connect\(HOST, PROJECT, ", code)
    if example == "sagemaker":
        for call in ("get_project_featurestores()", "get_featuregroups()", "get_features_list()",
                     "fs.get_features([", "fs.sql(", "JOIN attendances_features_1",
                     "get_featuregroup_statistics(", 'SECRETS_STORE = "secretsmanager"'):
            assert call in code
    else:
        for call in ('CERT_FOLDER = "/dbfs/mnt/', "cert_folder=CERT_FOLDER", ".mapInPandas(",
                     "keystore.p12", "material_passwd", "reuse_certificates=True"):
            assert call in code


# --- running the scripts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def football_project(remote_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A project on the server holding the four football feature groups; (project, API key)."""
    project, key = remote_store.new_project()
    with cloudsdk.connect("127.0.0.1", project, port=remote_store.port, api_key_value=key,
                          trust_store_path=str(remote_store.ca_file),
                          cert_folder=str(tmp_path_factory.mktemp("seed-certs"))) as conn:
        fs = conn.get_feature_store()
        for name, df in generate_features(n_teams=N_TEAMS, players_per_team=5).items():
            fs.create_feature_group(name, data=df, primary_key=["team_id"])
    yield project, key


def store_key(key: str, store: str) -> dict[str, str]:
    """Put the key where the examples look for it (seed names) and return the environment of
    a notebook running as the assumed role: endpoint, region and the role's credentials."""
    session = aws.assumed_role_session(ROLE, policy=ALLOW_READ)
    admin = aws.admin_session()
    if store == "secretsmanager":
        admin.client("secretsmanager").create_secret(Name=f"hopsworks/role/{ROLE}",
                                                     SecretString=json.dumps({"api-key": key}))
    else:
        admin.client("ssm").put_parameter(Name=f"/hopsworks/role/{ROLE}/type/api-key", Value=key,
                                          Type="SecureString")
    creds = session.get_credentials()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CLOUDSDK_API_KEY"))}
    env.update(
        AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"], AWS_DEFAULT_REGION=aws.REGION,
        AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key,
        AWS_SESSION_TOKEN=creds.token, AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run_example(example: str, args: list[str], env: dict[str, str], moto: aws.MotoServer) -> str:
    """Run a script with IAM enforced (the role's policy must allow the reads); its stdout."""
    with moto.iam_enforced():
        proc = subprocess.run([sys.executable, str(SCRIPTS[example]), *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    print(proc.stdout)  # shown by pytest -s, or when the test fails
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc.stdout


def server_args(remote_store: Any, project: str) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(remote_store.port), "--project", project,
            "--trust-store", str(remote_store.ca_file)]


@pytest.mark.parametrize("store", ["secretsmanager", "parameterstore"])
def test_sagemaker_example(store: str, remote_store: Any, football_project: tuple[str, str],
                           aws_env: aws.MotoServer, tmp_path: Path) -> None:
    project, key = football_project
    env = store_key(key, store)
    out = run_example("sagemaker", [*server_args(remote_store, project), "--secrets-store", store,
                                    "--region", aws.REGION, "--cert-folder", str(tmp_path / "certs")],
                      env, aws_env)
    assert f"API key from {store}" in out
    assert f"connected: Connection(host='127.0.0.1', project='{project}')" in out
    assert f"feature stores: ['{project}_featurestore']" in out
    for group in ("teams_features_1", "players_features_1", "season_scores_features_1",
                  "attendances_features_1"):
        assert group in out
    assert f"get_features: {N_TEAMS} rows x 6 features" in out
    assert f"sql: {N_TEAMS} rows x 12 columns" in out
    assert f"statistics of teams_features: Statistics(rows={N_TEAMS}" in out
    assert "disconnected" in out
    assert key not in out
    assert not list((tmp_path / "certs").rglob("*.pem"))  # disconnect() removed them


@pytest.mark.parametrize("mode", [
    "no-spark",
    pytest.param("spark", marks=[
        pytest.mark.slow,
        pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed"),
    ]),
])
def test_databricks_example(mode: str, remote_store: Any, football_project: tuple[str, str],
                            aws_env: aws.MotoServer, tmp_path: Path) -> None:
    project, key = football_project
    env = store_key(key, "parameterstore")
    mount = tmp_path / "dbfs" / "mnt" / "my_mount"  # stands in for /dbfs/mnt/my_mount
    mount.mkdir(parents=True)
    spark_args = ["--no-spark"] if mode == "no-spark" else ["--spark-master", "local[2]"]
    out = run_example("databricks", [*server_args(remote_store, project), "--region", aws.REGION,
                                     "--cert-folder", str(mount), *spark_args], env, aws_env)
    if mode == "no-spark":
        assert "spark: none, the executors' function runs in this process" in out
    else:
        assert re.search(r"^spark: \S+, master local\[2\]$", out, re.M)
    assert f"certificates in {mount / '127.0.0.1' / project}" in out
    for name in ("ca_chain.pem", "client.pem", "client_key.pem", "keystore.p12", "keyStore.jks",
                 "trustStore.jks", "material_passwd"):
        assert name in out
    m = re.search(rf"^executors read {N_TEAMS} teams, as \['(?P<subject>[^']+)'\]$", out, re.M)
    assert m, out
    assert project in m["subject"]
    assert "disconnected; certificates removed: True" in out
    assert key not in out
    assert not any(mount.iterdir())


if __name__ == "__main__":
    write_notebooks()
