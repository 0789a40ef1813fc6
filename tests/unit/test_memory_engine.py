"""The memory engine behind the gateway (docker/memory.py): the engine's answers and errors as
Docker 20.10 gives them, what tests script (images, health, exits, execs, failures), and the
dry-run engine (docker/dry_run.py) over a scripted "live" engine that no write reaches."""
import io
import re
import tarfile
import time

import pytest
from docker.types import Mount

from ansible_collections.clockwork.connections.plugins.module_utils.docker import errors
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import DryRunEngine, dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    EXEC_NOT_FOUND, EXEC_TIMED_OUT, container_state, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import (
    HANG, MISSING, MemoryEngine, memory_gateway)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

REDIS = "clockwork-test/redis:7"
REDIS_CONFIG = {"Cmd": ["redis-server"], "Entrypoint": ["docker-entrypoint.sh"], "Volumes": ["/data"],
                "ExposedPorts": ["6379/tcp"], "WorkingDir": "/data", "Labels": {"io.clockwork.recipe": "r"},
                "Env": ["PATH=/usr/bin:/bin", "REDIS_VERSION=7"]}
HEALTHCHECK = {"test": ["CMD", "redis-cli", "ping"], "interval": 10 ** 9, "timeout": 10 ** 9, "retries": 3,
               "start_period": 0}
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def gateway(**kwargs):
    kwargs.setdefault("images", {REDIS: REDIS_CONFIG})
    return memory_gateway(**kwargs)


def create_web(gw, name="web", network=None, aliases=None, **config):
    host = dict(port_bindings={"6379/tcp": [("127.0.0.1", None)]}, binds=["/srv/conf:/conf:ro"],
                mounts=[Mount("/named", "shop_data", type="volume")], restart_policy={"Name": "unless-stopped"},
                network_mode=network, cap_add=["NET_ADMIN"])
    networking = None
    if network:
        networking = gw.networking_config({network: gw.endpoint_config(aliases=aliases)})
    config.setdefault("labels", {"io.clockwork.stack": "shop"})
    return gw.create_container(name, REDIS, host_config=host, command=["redis-server", "--port", "6379"],
                               environment={"A": "1", "REDIS_VERSION": "7.2"}, ports=[("6379", "tcp")],
                               healthcheck=HEALTHCHECK, networking_config=networking, **config)


def refused(call, *args, **kwargs):
    with pytest.raises(errors.APIError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- containers -------------------------------------------------------------------------

def test_a_created_container_reads_as_the_engine_shows_it():
    gw = gateway()
    gw.create_network("shop_default", labels={"io.clockwork.stack": "shop"})
    made = create_web(gw, network="shop_default", aliases=["cache"])
    attrs = gw.container("web")
    assert HEX64.match(made["Id"]) and attrs["Id"] == made["Id"] and attrs["Name"] == "/web"
    assert attrs["Image"] == gw.image(REDIS)["Id"] and attrs["Image"].startswith("sha256:")
    config, host = attrs["Config"], attrs["HostConfig"]
    assert config["Image"] == REDIS and config["Cmd"] == ["redis-server", "--port", "6379"]
    assert config["Env"] == ["A=1", "REDIS_VERSION=7.2", "PATH=/usr/bin:/bin"]   # its own first, the image's after
    assert config["Labels"] == {"io.clockwork.recipe": "r", "io.clockwork.stack": "shop"}
    assert config["ExposedPorts"] == {"6379/tcp": {}} and config["Volumes"] == {"/data": {}}
    assert config["Healthcheck"] == {"Test": ["CMD", "redis-cli", "ping"], "Interval": 10 ** 9, "Timeout": 10 ** 9,
                                     "Retries": 3}   # the zero start period left out, as the engine does
    assert host["Binds"] == ["/srv/conf:/conf:ro"] and host["NetworkMode"] == "shop_default"
    assert host["PortBindings"] == {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert host["Mounts"] == [{"Target": "/named", "Source": "shop_data", "Type": "volume"}]
    assert host["CapAdd"] == ["NET_ADMIN"] and host["Privileged"] is False and host["IpcMode"] == "private"
    assert attrs["State"]["Status"] == "created" and "Health" not in attrs["State"]
    mounts = dict((m["Destination"], m) for m in attrs["Mounts"])
    assert mounts["/conf"]["Type"] == "bind" and mounts["/conf"]["RW"] is False
    assert mounts["/named"]["Name"] == "shop_data" and gw.volume("shop_data") is not None   # made on create
    assert HEX64.match(mounts["/data"]["Name"]), "the image's VOLUME gets an anonymous volume"
    assert attrs["NetworkSettings"]["Networks"]["shop_default"]["Aliases"] == ["cache"]
    assert attrs["NetworkSettings"]["Networks"]["shop_default"]["IPAddress"] == ""


def test_a_started_container_has_an_address_its_short_id_as_alias_a_port_and_health():
    gw = gateway()
    gw.create_network("shop_default")
    made = create_web(gw, network="shop_default", aliases=["cache"])
    gw.start("web")
    attrs = gw.container("web")
    assert container_state(attrs) == ("running", "healthy")
    point = attrs["NetworkSettings"]["Networks"]["shop_default"]
    assert point["Aliases"] == ["cache", made["Id"][:12]] and point["IPAddress"].startswith("172.")
    assert point["NetworkID"] == gw.network("shop_default")["Id"]
    bound = attrs["NetworkSettings"]["Ports"]["6379/tcp"]
    assert bound[0]["HostIp"] == "127.0.0.1" and int(bound[0]["HostPort"]) >= 32768
    endpoints = gw.network("shop_default")["Containers"]
    assert list(endpoints) == [made["Id"]] and endpoints[made["Id"]]["Name"] == "web"
    listed = gw.containers(filters={"name": "web"})[0]
    assert listed["Names"] == ["/web"] and listed["State"] == "running" and listed["Image"] == REDIS
    assert listed["Ports"] == [{"IP": "127.0.0.1", "PrivatePort": 6379, "PublicPort": int(bound[0]["HostPort"]),
                                "Type": "tcp"}]


def test_stop_rename_remove_and_their_errors_are_the_engines():
    gw = gateway()
    create_web(gw)
    gw.start("web")
    exc = refused(gw.remove_container, "web")
    assert errors.status_of(exc) == errors.CONFLICT and "You cannot remove a running container" in exc.explanation
    exc = refused(gw.create_container, "web", REDIS)
    assert errors.status_of(exc) == 409 and 'The container name "/web" is already in use' in exc.explanation
    gw.rename("web", "web-aside")
    assert gw.container("web") is None and gw.container("web-aside")["Name"] == "/web-aside"
    assert errors.status_of(refused(gw.rename, "web-aside", "web-aside")) == errors.BAD_REQUEST
    gw.stop("web-aside")
    state = gw.container("web-aside")["State"]
    assert (state["Status"], state["ExitCode"], state["Health"]["Status"]) == ("exited", 0, "unhealthy")
    gw.remove_container("web-aside")
    exc = refused(gw.start, "web-aside")
    assert isinstance(exc, errors.NotFound) and exc.explanation == "No such container: web-aside"
    assert "404 Client Error for http+docker://localhost/v1.41/containers/web-aside/start" in str(exc)
    assert isinstance(refused(gw.create_container, "web2", "no/such:image"), errors.ImageNotFound)
    assert errors.status_of(refused(gw.create_container, "bad name", REDIS)) == 400


def test_anonymous_volumes_go_with_v_and_named_ones_stay():
    gw = gateway()
    create_web(gw)
    anonymous = [m["Name"] for m in gw.container("web")["Mounts"] if m["Destination"] == "/data"][0]
    exc = refused(gw.remove_volume, anonymous)
    assert errors.status_of(exc) == 409 and exc.explanation.startswith("remove %s: volume is in use - [" % anonymous)
    # A recreate carries the old container's anonymous volume as a bind: the new one mounts the same volume.
    gw.rename("web", "web-old")
    gw.create_container("web", REDIS, host_config={"binds": ["%s:/data:rw" % anonymous]})
    assert [m["Name"] for m in gw.container("web")["Mounts"]] == [anonymous]
    gw.remove_container("web-old", volumes=True)
    assert gw.volume(anonymous) is not None, "still used by the new container"
    gw.remove_container("web", volumes=True)
    assert gw.volume(anonymous) is not None, "a volume named in a bind is no anonymous volume of that container"
    assert gw.volume("shop_data") is not None
    lone = gw.create_container("lone", REDIS)["Id"]
    own = [m["Name"] for m in gw.container(lone)["Mounts"]][0]
    gw.remove_container("lone", volumes=True)
    assert gw.volume(own) is None


def test_connect_disconnect_and_network_errors():
    gw = gateway()
    gw.create_network("front", labels={"io.clockwork.stack": "shop"})
    made = create_web(gw)
    gw.connect("web", "front", aliases=["api"])
    assert gw.container("web")["NetworkSettings"]["Networks"]["front"]["Aliases"] == ["api", made["Id"][:12]]
    exc = refused(gw.connect, "web", "front")
    assert errors.status_of(exc) == 403 and "endpoint with name web already exists in network front" == exc.words
    gw.start("web")
    exc = refused(gw.remove_network, "front")
    assert errors.status_of(exc) == 403 and "has active endpoints" in exc.explanation
    gw.disconnect("web", "front")
    assert "front" not in gw.container("web")["NetworkSettings"]["Networks"]
    assert errors.status_of(refused(gw.disconnect, "web", "front")) == 500
    assert isinstance(refused(gw.connect, "web", "nowhere"), errors.NotFound)
    gw.remove_network("front")
    assert gw.network("front") is None
    assert errors.status_of(refused(gw.remove_network, "bridge")) == 403
    gw.create_network("twice")
    gw.create_network("twice")
    assert "ambiguous" in refused(gw.remove_network, "twice").explanation


def test_lists_filter_by_label_name_and_state():
    gw = gateway()
    for name, stack in (("shop-web", "shop"), ("shop-db", "shop"), ("blog-web", "blog")):
        gw.create_container(name, REDIS, labels={"io.clockwork.stack": stack, "tier": "x"})
    gw.start("shop-db")
    names = lambda listed: sorted(c["Names"][0] for c in listed)   # noqa: E731
    assert names(gw.containers(all=True, filters={"label": "io.clockwork.stack=shop"})) == ["/shop-db", "/shop-web"]
    assert names(gw.containers(all=True, filters={"label": ["io.clockwork.stack=shop", "tier"]})) == \
        ["/shop-db", "/shop-web"]
    assert names(gw.containers(all=True, filters={"label": "io.clockwork.stack=none"})) == []
    assert names(gw.containers(all=True, filters={"name": "-web"})) == ["/blog-web", "/shop-web"]
    assert names(gw.containers(all=True, filters={"name": "^/shop-"})) == ["/shop-db", "/shop-web"]
    assert names(gw.containers()) == ["/shop-db"]
    gw.create_network("shop_default", labels={"io.clockwork.stack": "shop"})
    assert [n["Name"] for n in gw.networks(filters={"label": "io.clockwork.stack=shop"})] == ["shop_default"]
    assert [n["Name"] for n in gw.networks(names=["shop_"])] == ["shop_default"]
    gw.create_volume("shop_data", labels={"io.clockwork.stack": "shop"})
    assert [v["Name"] for v in gw.api.volumes(filters={"label": "io.clockwork.stack=shop"})["Volumes"]] == ["shop_data"]


def test_answers_are_copies():
    gw = gateway()
    gw.create_container("web", REDIS, labels={"a": "1"})
    gw.container("web")["Config"]["Labels"]["a"] = "changed"
    assert gw.container_now("web")["Config"]["Labels"]["a"] == "1"


def test_a_port_another_container_holds_is_refused():
    gw = gateway()
    for name in ("one", "two"):
        gw.create_container(name, REDIS, host_config={"port_bindings": {"6379/tcp": 8080}})
    gw.start("one")
    exc = refused(gw.start, "two")
    assert errors.status_of(exc) == 500 and "port is already allocated" in exc.explanation


# -- what tests script -------------------------------------------------------------------

def test_health_and_exit_after_start_are_scripted():
    gw = gateway()
    gw.api.after_start("sick", health="unhealthy")
    gw.api.after_start("slow", health="starting", once=True)
    gw.api.after_start("job", exits=3, logs="boom\n")
    for name in ("sick", "slow", "job", "plain"):
        gw.create_container(name, REDIS, healthcheck=HEALTHCHECK if name != "plain" else None)
        gw.start(name)
    assert container_state(gw.container("sick")) == ("running", "unhealthy")
    assert container_state(gw.container("slow")) == ("running", "starting")
    assert container_state(gw.container("plain")) == ("running", None)
    assert gw.container("job")["State"]["ExitCode"] == 3 and container_state(gw.container("job"))[0] == "exited"
    assert gw.logs_tail("job") == "boom"
    gw.api.set_health("slow", "healthy")
    assert container_state(gw.container_now("slow")) == ("running", "healthy")
    gw.restart("slow")
    assert container_state(gw.container_now("slow")) == ("running", "healthy"), "`once` applied once"


def test_the_engines_own_clock_makes_a_wait_take_no_time():
    gw = gateway()
    gw.api.after_start("db", health="starting", then="healthy", after=5)
    gw.create_container("db", REDIS, healthcheck=HEALTHCHECK)
    gw.start("db")
    started = gw.monotonic()
    gw.sleep(3)
    assert container_state(gw.container_now("db")) == ("running", "starting")
    gw.sleep(3)
    assert container_state(gw.container_now("db")) == ("running", "healthy")
    assert gw.monotonic() - started == 6
    assert dry_run_gateway(live=live_engine()).api.monotonic is time.monotonic, "a dry run waits in the live engine's time"


def test_execs_answer_as_scripted_through_the_gateways_reader():
    gw = gateway()
    gw.create_container("web", REDIS)
    gw.start("web")
    assert exec_in(gw, "web", ["true"]) == (0, "")
    gw.api.execs = {"redis-cli": (0, "PONG"), "nc": MISSING,
                    "printenv": lambda container, argv, env: (0, "%s %s" % (container, env.get(argv[1])))}
    assert exec_in(gw, "web", ["redis-cli", "ping"]) == (0, "PONG")
    assert exec_in(gw, "web", ["printenv", "SECRET"], env={"SECRET": "s3"}) == (0, "web s3")
    code, out = exec_in(gw, "web", ["nc", "-z", "db", "5432"])
    assert code == EXEC_NOT_FOUND and out == "nc is not in container web"
    gw.api.execs = lambda container, argv, env: (2, "x" * 100000)     # more than a socket buffer holds
    code, out = exec_in(gw, "web", ["big"])
    assert code == 2 and len(out) == 64 * 1024
    gw.api.execs = {"sleep": HANG}
    assert exec_in(gw, "web", ["sleep", "100"], timeout=1)[0] == EXEC_TIMED_OUT
    assert [argv for _c, argv, _e in gw.api.exec_log][:2] == [["timeout", "10", "true"], ["timeout", "10", "redis-cli",
                                                                                            "ping"]]
    gw.stop("web")
    code, out = exec_in(gw, "web", ["true"])
    assert code == 126 and "is not running" in out


def test_an_image_without_timeout_runs_the_program_bare():
    gw = gateway(execs={"timeout": MISSING, "cat": (0, "hello")})
    gw.create_container("web", REDIS)
    gw.start("web")
    assert exec_in(gw, "web", ["cat", "/x"]) == (0, "hello")
    assert [argv for _c, argv, _e in gw.api.exec_log] == [["timeout", "10", "cat", "/x"], ["cat", "/x"]]


def test_a_scripted_failure_and_a_concurrent_create():
    gw = gateway()

    def someone_else(engine):
        engine.create_container(REDIS, name="web", labels={"owner": "other"})

    gw.api.fail_next("create_container", 409, 'Conflict. The container name "/web" is already in use',
                     match="web", before=someone_else)
    exc = refused(gw.create_container, "web", REDIS)
    assert errors.status_of(exc) == 409 and gw.container("web")["Config"]["Labels"]["owner"] == "other"
    gw.create_container("other", REDIS)         # the failure was for the next call only
    gw.api.fail_next("start", 500, "boom", match=lambda container: container == "other", times=2)
    for _ in range(2):
        assert refused(gw.start, "other").explanation == "boom"
    gw.start("other")


def test_calls_are_recorded_in_order():
    gw = gateway()
    gw.create_container("web", REDIS)
    gw.start("web")
    gw.container("web")
    assert [c.method for c in gw.api.calls] == ["create_container", "start", "inspect_or_none"]
    assert gw.api.calls[0].kwargs["name"] == "web" and gw.api.calls[1].args == ("web",)
    assert [c.method for c in gw.api.writes()] == ["create_container", "start"]
    assert gw.actions == ["create container web", "start container web"]
    assert gw.dry_run is False


def test_files_round_trip_and_a_volume_shares_them():
    gw = gateway()
    for name in ("one", "two"):
        gw.create_container(name, REDIS, host_config={"mounts": [Mount("/shared", "shop_data", type="volume")]})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("dump.sql")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"SELECT"))
    gw.put_archive("one", "/shared/snap", buffer.getvalue())
    stream, stat = gw.get_archive("two", "/shared/snap/dump.sql")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("dump.sql").read() == b"SELECT"
    assert stat["name"] == "dump.sql" and stat["size"] == 6
    assert isinstance(refused(gw.get_archive, "one", "/nowhere"), errors.NotFound)


def test_pull_finds_only_what_the_registry_is_scripted_to_have():
    gw = gateway()
    assert isinstance(refused(gw.pull, "nginx:1.25"), errors.ImageNotFound)
    gw.api.pullable["nginx:1.25"] = {"ExposedPorts": ["80/tcp"]}
    gw.pull("nginx:1.25")
    assert gw.image("nginx:1.25")["Config"]["ExposedPorts"] == {"80/tcp": {}}


# -- Swarm ---------------------------------------------------------------------------------

def service_template(image=REDIS, env=None):
    return {"ContainerSpec": {"Image": image, "Env": env or [], "Labels": {"io.clockwork.stack": "shop"}},
            "RestartPolicy": {"Condition": "any"}}


def test_swarm_calls_need_a_manager():
    gw = gateway()
    exc = refused(gw.services)
    assert errors.status_of(exc) == 503 and "not a swarm manager" in exc.explanation
    assert gw.info()["Swarm"]["LocalNodeState"] == "inactive"


def test_a_service_runs_its_tasks_and_an_update_replaces_them():
    gw = gateway(swarm=True)
    gw.create_network("shop_net", driver="overlay", attachable=True)
    made = gw.create_service(service_template(), "shop_api", labels={"io.clockwork.stack": "shop"},
                             mode={"Replicated": {"Replicas": 2}}, networks=["shop_net"])
    service = gw.service("shop_api")
    assert service["ID"] == made["ID"] and service["Spec"]["TaskTemplate"]["Runtime"] == "container"
    tasks = gw.tasks(filters={"service": made["ID"]})
    assert sorted((t["Slot"], t["Status"]["State"], t["DesiredState"]) for t in tasks) == \
        [(1, "running", "running"), (2, "running", "running")]
    container = gw.container(tasks[0]["Status"]["ContainerStatus"]["ContainerID"])
    assert container["Config"]["Labels"]["com.docker.swarm.service.name"] == "shop_api"
    assert "shop_api" in container["NetworkSettings"]["Networks"]["shop_net"]["Aliases"]
    gw.update_service(made["ID"], service["Version"]["Index"], name="shop_api", task_template=service_template(env=["X=1"]),
                      labels={"io.clockwork.stack": "shop"}, mode={"Replicated": {"Replicas": 1}})
    states = sorted((t["DesiredState"], t["Status"]["State"]) for t in gw.tasks(filters={"service": "shop_api"}))
    assert states == [("running", "running"), ("shutdown", "shutdown"), ("shutdown", "shutdown")]
    assert gw.service("shop_api")["UpdateStatus"]["State"] == "completed"
    exc = refused(gw.update_service, made["ID"], service["Version"]["Index"], name="shop_api")
    assert errors.status_of(exc) == 500 and "out of sequence" in exc.explanation
    gw.remove_service(made["ID"])
    assert gw.services() == [] and gw.tasks() == []


def test_a_failing_service_and_a_job():
    gw = gateway(swarm=True)
    gw.api.after_start("shop_bad", exits=1)
    gw.create_service(service_template(), "shop_bad")
    failed = gw.tasks(filters={"service": "shop_bad"})
    assert len(failed) == 3 and all(t["Status"]["Err"] == "task: non-zero exit (1)" for t in failed)
    gw.create_service(service_template(image="missing:1"), "shop_missing")
    assert gw.tasks(filters={"service": "shop_missing"})[0]["Status"]["State"] == "rejected"
    made = gw.create_service(service_template(), "shop_migrate", mode={"ReplicatedJob": {"TotalCompletions": 1}})
    job = gw.service(made["ID"])
    assert job["JobStatus"]["JobIteration"]["Index"] == 1
    assert [(t["Status"]["State"], t["JobIteration"]) for t in gw.tasks(filters={"service": made["ID"]})] == \
        [("complete", {"Index": 1})]


def test_secrets_in_use_cannot_be_removed():
    gw = gateway(swarm=True)
    secret = gw.create_secret("shop_pw", b"s3cret", labels={"io.clockwork.stack": "shop"})
    template = service_template()
    template["ContainerSpec"]["Secrets"] = [{"SecretID": secret["ID"], "SecretName": "shop_pw",
                                             "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o400}}]
    gw.create_service(template, "shop_db")
    assert [s["Spec"]["Name"] for s in gw.secrets()] == ["shop_pw"] and "Data" not in gw.secrets()[0]["Spec"]
    exc = refused(gw.remove_secret, secret["ID"])
    assert errors.status_of(exc) == 400 and "is in use by the following service: shop_db" in exc.explanation
    task = gw.tasks(filters={"service": "shop_db"})[0]
    stream, _stat = gw.get_archive(task["Status"]["ContainerStatus"]["ContainerID"], "/run/secrets/pw")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("pw").read() == b"s3cret"
    gw.remove_service("shop_db")
    gw.remove_secret(secret["ID"])
    assert gw.secrets() == []


# -- the dry run -------------------------------------------------------------------------

def live_engine():
    """A scripted engine standing in for the live one: a running stack of two containers."""
    live = MemoryEngine(images={REDIS: REDIS_CONFIG}, execs={"redis-cli": (0, "PONG from live")})
    live.create_network("shop_default", labels={"io.clockwork.stack": "shop"})
    live.create_volume("shop_data", labels={"io.clockwork.stack": "shop"})
    for name in ("shop-db", "shop-web"):
        live.create_container(REDIS, name=name, labels={"io.clockwork.stack": "shop"},
                              host_config={"NetworkMode": "shop_default",
                                           "Mounts": [{"Type": "volume", "Source": "shop_data", "Target": "/v"}]})
        live.start(name)
    del live.calls[:]
    return live


def test_a_dry_run_writes_nothing_to_the_live_engine_and_reads_its_own_writes():
    live = live_engine()
    gw = dry_run_gateway(live=live)
    assert gw.dry_run is True and isinstance(gw.api, DryRunEngine)
    assert gw.container("shop-web")["Id"] == live.inspect_container("shop-web")["Id"]
    gw.stop("shop-web")
    gw.rename("shop-web", "shop-web-old")
    gw.create_container("shop-web", REDIS, labels={"io.clockwork.stack": "shop"})
    gw.start("shop-web")
    gw.remove_container("shop-web-old", force=True, volumes=True)
    gw.create_volume("shop_more")
    gw.create_network("shop_back")
    gw.connect("shop-db", "shop_back")
    assert live.writes() == [], "no write reached the live engine"
    assert container_state(live.inspect_container("shop-web")) == ("running", None)
    assert gw.container_now("shop-web")["Id"] != live.inspect_container("shop-web")["Id"]
    assert gw.container("shop-web-old") is None
    anonymous = [m["Name"] for m in live.inspect_container("shop-web")["Mounts"] if m["Destination"] == "/data"][0]
    assert gw.volume(anonymous) is None and live.inspect_volume(anonymous), "its anonymous volume went, in the dry run"
    listed = sorted(c["Names"][0] for c in gw.containers(all=True, filters={"label": "io.clockwork.stack=shop"}))
    assert listed == ["/shop-db", "/shop-web"]
    assert sorted(n["Name"] for n in gw.networks(names=["shop_"])) == ["shop_back", "shop_default"]
    assert sorted(v["Name"] for v in gw.api.volumes(filters={"name": "shop_"})["Volumes"]) == ["shop_data", "shop_more"]
    assert "shop_back" in gw.container_now("shop-db")["NetworkSettings"]["Networks"]
    assert "shop_back" not in live.inspect_container("shop-db")["NetworkSettings"]["Networks"]
    assert gw.actions[:2] == ["stop container shop-web", "rename container shop-web to shop-web-old"]


def test_a_dry_run_meets_the_live_engines_names_and_refusals():
    live = live_engine()
    gw = dry_run_gateway(live=live)
    assert errors.status_of(refused(gw.create_container, "shop-db", REDIS)) == 409
    assert errors.status_of(refused(gw.remove_network, "shop_default")) == 403, "its running containers came along"
    assert errors.status_of(refused(gw.remove_volume, "shop_data")) == 409, "live containers use it"
    gw.remove_container("shop-db", force=True)
    gw.create_container("shop-db", REDIS)                # the name is free in the dry run now
    assert errors.status_of(refused(gw.rename, "shop-web", "shop-db")) == 409
    assert live.writes() == []
    with pytest.raises(ClockworkError, match="does not send create_container"):
        gw.api.live.create_container(REDIS, name="x")


def test_a_dry_runs_execs_go_live_only_for_containers_it_left_alone():
    live = live_engine()
    gw = dry_run_gateway(live=live)
    assert exec_in(gw, "shop-db", ["redis-cli", "ping"]) == (0, "PONG from live")
    gw.create_container("shop-cache", REDIS)
    gw.start("shop-cache")
    gw.restart("shop-web")
    assert exec_in(gw, "shop-cache", ["redis-cli", "ping"]) == (0, "")
    assert exec_in(gw, "shop-web", ["redis-cli", "ping"]) == (0, "")
    assert [c for c, _argv, _env in live.exec_log] == ["shop-db"]
    gw.api.execs = {"redis-cli": (1, "scripted")}
    assert exec_in(gw, "shop-cache", ["redis-cli", "ping"]) == (1, "scripted")


def test_a_dry_run_reads_a_container_it_left_alone_afresh():
    live = live_engine()
    gw = dry_run_gateway(live=live)
    assert container_state(gw.container("shop-db"))[0] == "running"
    live.stop("shop-db")                      # something outside the run changed it
    assert container_state(gw.container_now("shop-db"))[0] == "exited"
    assert [c["Names"] for c in gw.containers()] == [["/shop-web"]]
    assert [c["State"] for c in gw.containers(all=True, filters={"name": "shop-db"})] == ["exited"]
    live.start("shop-db")
    assert [c["State"] for c in gw.containers(all=True, filters={"name": "shop-db"})] == ["running"]


def test_a_dry_run_pull_asks_the_registry_only():
    live = live_engine()
    live.pullable["nginx:1.25"] = {}
    gw = dry_run_gateway(live=live)
    gw.pull("nginx:1.25")
    assert gw.image("nginx:1.25") is not None and live.inspect_or_none("image", "nginx:1.25") is None
    assert isinstance(refused(gw.pull, "nginx:9"), errors.NotFound)
    assert live.writes() == []


def test_a_dry_run_on_swarm_sees_live_services_and_keeps_its_own():
    live = MemoryEngine(images={REDIS: REDIS_CONFIG}, swarm=True)
    secret = live.create_secret("shop_pw", b"pw")
    live.create_secret("shop_old", b"old")
    template = service_template()
    template["ContainerSpec"]["Secrets"] = [{"SecretID": secret["ID"], "SecretName": "shop_pw", "File": {"Name": "pw"}}]
    made = live.create_service(template, name="shop_api", labels={"io.clockwork.stack": "shop"})
    del live.calls[:]
    gw = dry_run_gateway(live=live)
    assert errors.status_of(refused(gw.remove_secret, "shop_pw")) == 400, "a live service uses it"
    service = gw.service("shop_api")
    assert [t["Status"]["State"] for t in gw.tasks(filters={"service": made["ID"]})] == ["running"]
    gw.remove_secret("shop_old")
    assert [s["Spec"]["Name"] for s in gw.secrets()] == ["shop_pw"]
    gw.update_service(made["ID"], service["Version"]["Index"], name="shop_api", task_template=service_template(env=["X=1"]),
                      labels={"io.clockwork.stack": "shop"})
    gw.create_service(service_template(), "shop_worker")
    assert sorted(s["Spec"]["Name"] for s in gw.services()) == ["shop_api", "shop_worker"]
    assert sorted(t["Status"]["State"] for t in gw.tasks(filters={"service": "shop_api"})) == ["running", "shutdown"]
    gw.remove_secret("shop_pw")            # the dry run's update took it out of the service's spec
    assert gw.secrets() == []
    assert live.writes() == [] and [s["Spec"]["Name"] for s in live.services()] == ["shop_api"]
    assert sorted(s["Spec"]["Name"] for s in live.secrets()) == ["shop_old", "shop_pw"]
    assert live.inspect_service("shop_api")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == []
    assert [t["Status"]["State"] for t in live.tasks(filters={"service": "shop_api"})] == ["running"]


# -- the appliers run on it --------------------------------------------------------------

def stack_params(env=None, extra=()):
    web = {"name": "web", "type": "container", "image": "clockwork-test/nginx:1.22", "ports": ["8080:80"]}
    if env:
        web["env"] = env
    return {"name": "shop", "resources": [{"name": "cache", "type": "container", "image": REDIS,
                                           "healthcheck": {"test": ["CMD", "redis-cli", "ping"]}}, web] + list(extra),
            "connections": [{"type": "dependency", "from": "web", "to": "cache"}], "state": "present", "purge": False,
            "base_dir": None, "diagram_path": None, "verify": False, "parallel": 4, "engine": "docker"}


def test_the_docker_applier_runs_on_the_memory_engine_and_on_a_dry_run_over_it():
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
    from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack
    live = MemoryEngine(images={REDIS: REDIS_CONFIG, "clockwork-test/nginx:1.22": {"ExposedPorts": ["80/tcp"]}})
    assert run_stack(DockerGateway(api=live), stack_params())["changed"]
    assert container_state(live.inspect_container("cache")) == ("running", "healthy")
    again = DockerGateway(api=live)
    assert run_stack(again, stack_params())["changed"] is False
    writes = len(live.writes())
    assert again.actions == [], "nothing written, not even the stack's lock (a dry run found nothing to do)"
    dry = dry_run_gateway(live=live)
    worker = {"name": "worker", "type": "container", "image": REDIS}
    assert run_stack(dry, stack_params(env={"X": "1"}, extra=[worker]))["changed"]
    assert "create container worker" in dry.actions and "create container web" in dry.actions
    assert live.writes()[writes:] == [], "the dry run wrote nothing to the engine under it"
    assert run_stack(dry, stack_params(env={"X": "1"}, extra=[worker]))["changed"] is False, \
        "the dry run's later reads see its own writes"


class LiveWithHook(object):
    """The live engine, with `during_read(kind, ref)` called while it answers an inspect (the dry
    run's lock is let go then: another thread's calls go on meanwhile)."""

    def __init__(self, live, during_read):
        self._live, self._during_read = live, during_read

    def inspect_or_none(self, kind, ref):
        self._during_read(kind, ref)
        return self._live.inspect_or_none(kind, ref)

    def __getattr__(self, name):
        return getattr(self._live, name)


def in_thread(call):
    import threading
    done = []
    worker = threading.Thread(target=lambda: done.append(call()))
    worker.start()
    worker.join(10)
    assert done, "the other thread waited for the dry run's lock: the live read held it"
    return done[0]


def test_a_dry_run_reads_the_live_engine_in_parallel():
    import threading
    both = threading.Barrier(2, timeout=10)     # broken (an error) unless two live reads are under way at once
    gw = dry_run_gateway(live=LiveWithHook(live_engine(), lambda kind, ref: both.wait()))
    found = {}
    readers = [threading.Thread(target=lambda n=n: found.update({n: gw.container(n)})) for n in ("shop-db", "shop-web")]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(20)
    assert not both.broken and sorted(found) == ["shop-db", "shop-web"] and all(found.values()), found


def test_what_another_thread_did_during_a_live_read_is_what_the_dry_run_answers():
    live = live_engine()
    once = []

    def meanwhile(kind, ref):
        if ref == "shop-web" and not once:
            once.append(ref)
            in_thread(lambda: gw.api.inspect_or_none("container", "shop-web"))   # copied in by another thread
    gw = dry_run_gateway(live=LiveWithHook(live, meanwhile))
    seen = gw.api.inspect_or_none("container", "shop-web")
    assert seen is not None and seen["Id"] == live.inspect_container("shop-web")["Id"], "not found: it was there"

    once[:] = []

    def renamed_meanwhile(kind, ref):
        if ref == "shop-db" and not once:
            once.append(ref)
            in_thread(lambda: gw.api.rename("shop-db", "shop-db-old"))          # the run renamed it meanwhile
    gw = dry_run_gateway(live=LiveWithHook(live, renamed_meanwhile))
    assert gw.api.inspect_or_none("container", "shop-db") is None, "the dry run's shop-db is shop-db-old by now"
    assert gw.api.inspect_or_none("container", "shop-db-old")["Id"] == live.inspect_container("shop-db")["Id"]
    assert live.writes() == []
