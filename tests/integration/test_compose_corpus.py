"""The compose corpus (issue 34): files the tests write with every key of the option table in each
syntax form, and files shaped like common public examples (tests/compose_corpus/: WordPress,
Nextcloud, Gitea, React/Express/MySQL, Flask/Redis, a hardened stack).

- `docker compose config` (Compose v2) of each file and of to_compose(from_compose(file)) say the
  same of every service, after the differences the stack makes on purpose (normal() says which).
- A few of them deployed by the stack role and by `docker compose up`: the containers are the same,
  field by field, as compose_compare's full snapshot reads them (local images only)."""
import json
import os
import socket

import pytest
import yaml

from compose_compare import compose_v2, compose_v2_missing, differences
from helpers import LOCAL_IMAGES, NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, ROOT, as_text, docker
from test_compose_import_deploy import containers_of, converged, deploy, state_of
from test_rotation import stack  # noqa: F401  (the stack fixture that also removes carried anonymous volumes)

from ansible_collections.clockwork.connections.plugins.module_utils.apply.build import built_image
from ansible_collections.clockwork.connections.plugins.module_utils.plan import RESOURCE_TYPES
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose

pytestmark = pytest.mark.skipif(compose_v2_missing() is not None, reason=str(compose_v2_missing()))

CORPUS = os.path.join(ROOT, "tests", "compose_corpus")
IMAGES = {"@POSTGRES@": POSTGRES_IMAGE, "@REDIS@": REDIS_IMAGE, "@NGINX@": NGINX_IMAGE,
          "@MARIADB@": LOCAL_IMAGES["mariadb_image"]}
# What the examples may ask for, as their users would allow it.
ALLOW = ["capabilities"]
NO_BUILD = "build" not in RESOURCE_TYPES["container"]

# Every key of the option table, each syntax form (short and long), in services that are only read.
EVERY_KEY = """
services:
  plain:
    image: "@NGINX@"
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: ["/docker-entrypoint.sh"]
    user: "101:101"
    working_dir: /usr/share/nginx/html
    hostname: plain.local
    domainname: example.org
    mac_address: "02:42:ac:11:00:99"
    extra_hosts: ["db.local:10.0.0.5", "cache.local=10.0.0.6"]
    dns: 9.9.9.9
    dns_search: example.org
    dns_opt: ["ndots:2"]
    cap_drop: [NET_RAW]
    cap_add: [CHOWN]
    read_only: false
    security_opt: ["no-new-privileges:true"]
    tmpfs: /run
    shm_size: 128m
    init: true
    stop_signal: SIGQUIT
    stop_grace_period: 20s
    group_add: [mail, "1001"]
    pull_policy: never
    platform: linux/amd64
    mem_limit: 256m
    mem_reservation: 64m
    cpus: 0.5
    cpu_shares: 512
    pids_limit: 100
    oom_score_adj: 100
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    sysctls: {net.core.somaxconn: "1024"}
    logging: {driver: json-file, options: {max-size: 10m, max-file: "3"}}
    labels: {com.example.role: plain}
    restart: unless-stopped
    healthcheck: {test: [CMD, "true"], interval: 5s, timeout: 2s, retries: 2, start_period: 1s}
    ports:
      - "8080:80"
      - "127.0.0.1:8443:443/tcp"
      - "9000-9001:9000-9001"
      - {target: 53, published: "5353", protocol: udp, host_ip: 127.0.0.1}
    expose: ["7000", "7001/udp"]
    volumes:
      - data:/data:ro
      - /anon
      - {type: volume, source: cache, target: /cache, volume: {nocopy: true}}
      - {type: tmpfs, target: /scratch, tmpfs: {size: 1048576}}
      - {type: bind, source: ./conf, target: /etc/conf, read_only: true}
      - ./shared:/shared:rshared
    environment: [A=1, B=two]
    env_file: app.env
  longforms:
    image: "@REDIS@"
    command: redis-server --save ""
    entrypoint: docker-entrypoint.sh
    extra_hosts: {api.local: 10.0.0.7}
    sysctls: [net.ipv4.tcp_syncookies=1]
    deploy:
      replicas: 1
      resources: {limits: {memory: 128m, cpus: "0.25", pids: 50}, reservations: {memory: 32m}}
      restart_policy: {condition: on-failure}
      update_config: {order: start-first}
    environment: {C: "3"}
    healthcheck: {disable: true}
  shares:
    image: "@NGINX@"
    ipc: shareable
    pid: "service:plain"
    network_mode: none
    stop_grace_period: 1m30s
volumes:
  data:
  cache: {driver: local}
"""


def filled(text, tag="", ports=()):
    for key, value in IMAGES.items():
        text = text.replace(key, value)
    for index, port in enumerate(ports or (free_port(), free_port())):
        text = text.replace("@PORT%s@" % ("" if index == 0 else index + 1), str(port))
    return text.replace("@T@", tag)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_files(directory, text):
    """The compose file and what it reads or binds beside it."""
    (directory / "compose.yaml").write_text(text)
    (directory / "app.env").write_text("FROM_FILE=yes\n")
    for sub in ("conf", "shared", "gitea", "postgres", "backend/src", "frontend/src", "db"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "db" / "password.txt").write_text("db-s3cret\n")
    # What the run writes beside the file (the stack's diagram, the export) is no part of the "." context.
    (directory / ".dockerignore").write_text("*.stack.md\nexported.yaml\n.env\nsecrets\n")
    for context in ("backend", "frontend", "."):
        (directory / context / "Dockerfile").write_text("FROM %s AS development\nFROM %s AS builder\n"
                                                        % (NGINX_IMAGE, NGINX_IMAGE))


def round_trip(directory, project):
    """to_compose(from_compose(compose.yaml)) written beside it as exported.yaml, with its files."""
    imported = from_compose((directory / "compose.yaml").read_text(), project_name=project, base_dir=str(directory),
                            allow=ALLOW)
    result = export({"name": project, "resources": imported["resources"], "connections": imported["connections"]},
                    base_dir=str(directory))
    (directory / "exported.yaml").write_text(result["text"])
    for path, spec in result["files"].items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(spec["content"])
    return imported


def config(directory, project, name):
    proc = compose_v2(["-p", project, "-f", name, "config", "--format", "json"], cwd=str(directory))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


HEALTHCHECK_DEFAULTS = {"interval": "30s", "timeout": "30s", "retries": 3, "start_period": "0s"}
# deploy.resources and deploy.restart_policy as the service keys Compose v2 gives a container the same way.
RESOURCES = {("limits", "memory"): "mem_limit", ("limits", "cpus"): "cpus", ("limits", "pids"): "pids_limit",
             ("reservations", "memory"): "mem_reservation"}
CONDITIONS = {"on-failure": "on-failure", "any": "always", "none": "no"}


def normal(document, name):
    """A service of `docker compose config` in one form, less what the stack makes differently on purpose:
    - container_name (the export names each container after its resource, as the stack does);
    - x- fields (x-clockwork, what the export adds for the import);
    - networks and volumes by their engine names (the export keys them by those), without the service's own
      name among a network's aliases (Compose gives it on each network; the import declares it);
    - deploy.resources and deploy.restart_policy as mem_limit, cpus, ..., restart (the same container);
    - a mount's empty `volume: {}` and a bind's create_host_path, which Compose adds to the short syntax
      (the export writes the long one; the host path is the file resource's);
    - a healthcheck's timings the file left to the engine (the export writes the engine's defaults);
    - depends_on: compared apart (the stack also waits for every connection's target);
    - a file secret as the read-only bind Compose makes of it (the stack's file connection is that bind); the
      password files the export writes itself (secrets/<service>_<NAME>) are the connection's."""
    service = dict((k, v) for k, v in document["services"][name].items()
                   if k not in ("container_name", "depends_on", "secrets") and not k.startswith("x-"))
    networks, volumes = document.get("networks") or {}, document.get("volumes") or {}
    for secret in document["services"][name].get("secrets") or []:   # a file secret: a read-only bind, as Compose
        source = (document.get("secrets") or {}).get(secret["source"]) or {}   # mounts it (the stack mounts it so)
        if source.get("file") and not secret["source"].startswith(name + "_"):   # the stack's own password files
            service["volumes"] = (service.get("volumes") or []) + [{
                "type": "bind", "source": source["file"], "read_only": True,
                "target": secret.get("target") if str(secret.get("target", "")).startswith("/")
                else "/run/secrets/" + (secret.get("target") or secret["source"])}]
    if service.get("networks"):   # the service's own name, an alias Compose gives it on each network anyway
        service["networks"] = dict(((networks.get(k) or {}).get("name", k), dict(
            v, aliases=[a for a in v.get("aliases") or [] if a != name] or None) if v else v)
            for k, v in service["networks"].items())
        service["networks"] = dict((k, dict((a, b) for a, b in v.items() if b is not None) or None if v else v)
                                   for k, v in service["networks"].items())
    mounts = []
    for mount in service.get("volumes") or []:
        mount = dict(mount)
        if mount.get("type") == "volume" and mount.get("source"):
            mount["source"] = (volumes.get(mount["source"]) or {}).get("name", mount["source"])
        if (mount.get("bind") or {}).get("create_host_path"):
            mount["bind"] = dict((k, v) for k, v in mount["bind"].items() if k != "create_host_path")
        mounts.append(dict((k, v) for k, v in mount.items() if v != {}))
    if mounts:
        service["volumes"] = sorted(mounts, key=lambda m: m["target"])
    deploy = dict(service.pop("deploy", None) or {})
    resources = deploy.pop("resources", None) or {}
    for (part, key), field in RESOURCES.items():
        if (resources.get(part) or {}).get(key) is not None:
            service.setdefault(field, resources[part][key])
    condition = (deploy.pop("restart_policy", None) or {}).get("condition")
    if condition and not service.get("restart"):
        service["restart"] = CONDITIONS[condition]
    service["deploy"] = dict((k, v) for k, v in deploy.items() if v != {}) or None
    if service.get("healthcheck") and not service["healthcheck"].get("disable"):
        service["healthcheck"] = dict(HEALTHCHECK_DEFAULTS, **service["healthcheck"])
    return service


CORPUS_FILES = sorted(f for f in os.listdir(CORPUS) if f.endswith(".yaml"))
# The files with a `build`, which the container resource may not have yet.
NEEDS_BUILD = ("react_express_mysql.yaml", "flask_redis.yaml")


@pytest.mark.parametrize("name", ["every_key"] + CORPUS_FILES)
def test_compose_config_of_the_file_and_of_its_round_trip_agree(tmp_path, name, request):
    if name in NEEDS_BUILD and NO_BUILD:
        request.applymarker(pytest.mark.xfail(strict=True, reason="not in the stack yet: build"))
    text = EVERY_KEY if name == "every_key" else open(os.path.join(CORPUS, name)).read()
    project_files(tmp_path, filled(text, ports=(8001, 8002)))
    project = "corpus"
    round_trip(tmp_path, project)
    original, exported = config(tmp_path, project, "compose.yaml"), config(tmp_path, project, "exported.yaml")
    assert sorted(exported["services"]) == sorted(original["services"])
    found = []
    for service in sorted(original["services"]):
        waited = set(exported["services"][service].get("depends_on") or {})
        if not set(original["services"][service].get("depends_on") or {}) <= waited:
            found.append("%s depends_on: exported %s, original %s" % (service, sorted(waited), sorted(
                original["services"][service]["depends_on"])))
        ours, theirs = normal(exported, service), normal(original, service)
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                found.append("%s %s: exported %s, original %s" % (service, key, json.dumps(ours.get(key)),
                                                                  json.dumps(theirs.get(key))))
    assert not found, "\n".join(found)


# -- deployed by both ---------------------------------------------------------------------------------

DEPLOYED = ["hardened.yaml", "wordpress.yaml", "gitea.yaml", "nextcloud.yaml", "secret_path.yaml", "flask_redis.yaml",
            "external.yaml"]


def made_externals(text, request):
    """The file's external networks and volumes, made before either deploys it (Compose and the stack both
    refuse a missing one) and removed after both: neither removes them."""
    document = yaml.safe_load(text)
    for kind in ("network", "volume"):
        for key, spec in sorted((document.get(kind + "s") or {}).items()):
            if (spec or {}).get("external"):
                name = spec.get("name") or key
                docker(kind, "create", name)
                request.addfinalizer(lambda k=kind, n=name: docker(k, "rm", n, check=False))


def built(shape, declared):
    """The image of a service with a build: each tool tags what it builds with a name of its own
    (<stack>-<service>:clockwork, <project>-<service>); the rest of the container is compared."""
    for name, fields in shape.items():
        if declared.get(name, {}).get("build"):
            fields["image"] = "(built from %s)" % declared[name]["build"].get("target", "its Dockerfile")
    return shape


@pytest.mark.parametrize("name", DEPLOYED)
def test_the_stack_and_compose_up_make_the_same_containers(stack, tmp_path, name, request):  # noqa: F811
    if name in NEEDS_BUILD and NO_BUILD:
        request.applymarker(pytest.mark.xfail(strict=True, reason="not in the stack yet: build"))
    tag = stack.split("-")[-1]
    text = filled(open(os.path.join(CORPUS, name)).read(), tag="-" + tag)
    project_files(tmp_path, text)
    made_externals(text, request)
    before = state_of(tag)
    dry = deploy(tmp_path, stack, check=True, diff=True, clockwork_compose_allow=ALLOW)
    assert dry.rc == 0, dry.output
    assert converged(dry, stack)["changed"] is True and state_of(tag) == before, dry.output
    applied = deploy(tmp_path, stack, clockwork_compose_allow=ALLOW)
    assert applied.rc == 0, applied.output
    checks = converged(applied, stack)["checks"]
    assert checks and all(c["ok"] for c in checks), as_text(checks)
    again = deploy(tmp_path, stack, clockwork_compose_allow=ALLOW)
    assert again.rc == 0 and converged(again, stack)["changed"] is False, again.output
    dry_again = deploy(tmp_path, stack, check=True, clockwork_compose_allow=ALLOW)
    assert dry_again.rc == 0 and converged(dry_again, stack)["changed"] is False, dry_again.output
    declared = dict((r["name"], r) for r in from_compose((tmp_path / "compose.yaml").read_text(), project_name=stack,
                                                         base_dir=str(tmp_path), allow=ALLOW)["resources"])
    ours = built(containers_of("io.clockwork.stack=%s" % stack), declared)
    removed = deploy(tmp_path, stack, state="absent", clockwork_purge=True, clockwork_compose_allow=ALLOW)
    assert removed.rc == 0, removed.output

    project = stack.replace("-", "") + "c"
    try:
        up = compose_v2(["-p", project, "up", "-d", "--wait"], cwd=str(tmp_path))
        assert up.returncode == 0, up.stderr
        theirs = built(containers_of("com.docker.compose.project=%s" % project), declared)
    finally:
        compose_v2(["-p", project, "down", "-v", "--rmi", "local"], cwd=str(tmp_path))
        for resource in declared.values():   # what the stack built: the stack's purge keeps images
            if resource.get("build"):
                docker("rmi", built_image(stack, resource), check=False)
    assert sorted(ours) == sorted(theirs)
    found = differences(ours, theirs)
    assert not found, "the stack and Compose made different containers of %s:\n%s" % (name, "\n".join(found))
