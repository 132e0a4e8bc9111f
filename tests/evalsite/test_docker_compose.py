"""docker-compose.yml cannot run here (no Docker engine): check its services, commands and wiring."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_defines_the_five_services_with_healthchecks():
    services = load_compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "gpu-worker"}
    for name, service in services.items():
        assert "healthcheck" in service, name


def test_web_migrates_then_serves_with_gunicorn():
    command = load_compose()["services"]["web"]["command"]
    assert command.index("migrate") < command.index("gunicorn")
    assert "evalsite.wsgi" in command


def test_workers_consume_their_own_queues():
    services = load_compose()["services"]
    worker, gpu = services["worker"]["command"], services["gpu-worker"]["command"]
    assert worker[worker.index("-Q") + 1] == "default"
    assert gpu[gpu.index("-Q") + 1] == "gpu"
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_app_services_share_the_same_environment_wiring():
    services = load_compose()["services"]
    for name in ("web", "worker", "gpu-worker"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert "SECRET_KEY" in env
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_compose_environment_names_are_settings_the_site_reads():
    settings_text = (ROOT / "evalsite" / "settings.py").read_text()
    env = load_compose()["services"]["gpu-worker"]["environment"]
    for key in env:
        if key in ("HF_HUB_OFFLINE", "MALLOC_MMAP_THRESHOLD_"):
            continue
        assert f'"{key}"' in settings_text, key


def test_only_the_gpu_worker_image_carries_torch():
    services = load_compose()["services"]
    assert services["gpu-worker"]["build"]["args"]["EXTRAS"] == "separability"
    for name in ("web", "worker"):
        assert services[name]["build"]["args"]["EXTRAS"] == ""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("torch") for dep in project["dependencies"])
    assert "torch==2.13.0" in project["optional-dependencies"]["separability"]
