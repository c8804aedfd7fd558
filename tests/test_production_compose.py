"""docker/: the compose file parses, and its services, environment and healthchecks match what the code
reads. Docker cannot run here, so the files are checked against the code instead."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser
from app.config import Config
from app.observability.settings import ServerSettings
from app.settings import SETTINGS

DOCKER = Path(__file__).resolve().parent.parent / "docker"
README = DOCKER.parent / "README.md"
APP_SERVICES = ("migrate", "api", "worker", "scheduler")
LONG_RUNNING = ("postgres", "redis", "minio", "api", "worker", "scheduler")
KNOWN_VARIABLES = {setting.env for setting in SETTINGS}
# What an operator puts in docker/.env (see env.example): every ${...} the compose file needs.
DOT_ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_PASSWORD": "minio-secret",
    "MEETREC_SECRET_KEY": "5f0c2e9a7b41d86f3a9e0c4b7d2f6a18e3c5b9d0f7a24e61c8b3d5f9a0e7c2b4",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: object, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (an unset required one fails the test)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"{name} is required: {arg}")
        return arg or ""

    return _VARIABLE.sub(one, str(value)).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def app_env(services: dict, name: str) -> dict[str, str]:
    return {k: interpolate(v, DOT_ENV) for k, v in services[name]["environment"].items()}


def test_compose_file_declares_the_stack(services):
    assert set(services) == {"postgres", "redis", "minio", "minio-init", *APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_variable_an_app_service_sets_is_one_the_code_reads(services, name):
    assert set(services[name]["environment"]) - KNOWN_VARIABLES == set()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment_is_a_valid_configuration(services, name):
    env = app_env(services, name)
    config = Config.from_env(env)
    ServerSettings.from_env(env)
    assert config.database_url.startswith("postgresql+psycopg://")
    assert config.secret_key and config.s3_access_key and config.s3_secret_key


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_reaches_the_backing_services_by_their_compose_names(services, name):
    config = Config.from_env(app_env(services, name))
    assert re.match(r"postgresql\+psycopg://meetrec:pg-secret@postgres:5432/meetrec$", config.database_url)
    assert config.redis_url == "redis://redis:6379/0"
    assert config.s3_endpoint == "http://minio:9000"


def test_app_credentials_match_the_servers(services):
    env = app_env(services, "api")
    minio = {k: interpolate(v, DOT_ENV) for k, v in services["minio"]["environment"].items()}
    postgres = {k: interpolate(v, DOT_ENV) for k, v in services["postgres"]["environment"].items()}
    assert (env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in env["DATABASE_URL"]
    assert env["DATABASE_URL"].endswith("/" + postgres["POSTGRES_DB"])


def test_app_services_share_one_configuration(services):
    shared = app_env(services, "worker")
    for name in APP_SERVICES:
        env = app_env(services, name)
        assert {k: env[k] for k in shared} == shared, name


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(services, name):
    assert services[name]["healthcheck"]["test"]


@pytest.mark.parametrize("role", ["api", "worker", "scheduler"])
def test_role_healthcheck_is_the_meetrec_health_command(services, role):
    test = services[role]["healthcheck"]["test"]
    assert test[:1] == ["CMD"] and test[1:] == ["meetrec", "health", role]
    assert build_parser().parse_args(test[2:]).role == role


def entrypoint_roles() -> set[str]:
    text = (DOCKER / "entrypoint.sh").read_text()
    return set(re.findall(r"^\s+(\w+)\)\s+exec meetrec ", text, re.M))


def test_entrypoint_has_the_four_roles():
    assert entrypoint_roles() >= {"api", "worker", "scheduler", "migrate"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_command_is_an_entrypoint_role(services, name):
    assert services[name]["command"][0] == name.split("-")[0]
    assert services[name]["command"][0] in entrypoint_roles()


def test_worker_queues_are_the_real_queues(services):
    from app.queueing import QUEUE_NAMES

    assert set(services["worker"]["command"][1:]) == set(QUEUE_NAMES)


def test_entrypoint_is_valid_posix_sh():
    assert subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")]).returncode == 0


@pytest.mark.parametrize("name", ["api", "worker", "scheduler"])
def test_only_migrate_migrates_and_the_others_wait_for_it(services, name):
    assert services[name]["command"][0] != "migrate"
    assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_migrate_and_bucket_creation_run_once(services):
    assert services["migrate"]["restart"] == "no"
    assert services["minio-init"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    script = " ".join(services["minio-init"]["command"])
    assert "mc mb --ignore-existing" in script and "S3_BUCKET" in script


def test_redis_keeps_its_data_and_never_evicts(services):
    argv = [interpolate(a, {}) for a in services["redis"]["command"]]
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"


def test_worker_stop_grace_leaves_time_to_upload_the_open_segment(services):
    assert services["worker"]["stop_grace_period"] == "120s"


def test_readme_documents_every_variable_compose_sets(services):
    readme = README.read_text()
    for name in APP_SERVICES:
        for variable in services[name]["environment"]:
            assert f"`{variable}`" in readme, variable


def test_env_example_sets_every_required_variable():
    example = (DOCKER / "env.example").read_text()
    compose = (DOCKER / "compose.yaml").read_text()
    required = {m.group(1) for m in _VARIABLE.finditer(compose) if m.group(2) == ":?"}
    assert required <= set(re.findall(r"^(\w+)=", example, re.M))


def test_image_runs_as_a_non_root_user_through_tini_and_the_entrypoint():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["tini", "--", "meetrec-entrypoint"]' in dockerfile
