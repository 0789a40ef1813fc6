"""network_connection, dependency_connection and verify on a real engine."""
import random

from helpers import NGINX_IMAGE, REDIS_IMAGE, docker, engine_state, env_of, inspect, playbook


def container(name, stack, image, **extra):
    args = dict(name=name, image=image, stack=stack)
    args.update(extra)
    return {"name": "container " + name, "clockwork.connections.container": args}


def network_tasks(stack, subnet, **net_args):
    api, cache = stack + "-api", stack + "-cache"
    args = dict({"from": api, "to": cache, "network_name": stack + "-backend", "stack": stack,
                 "subnet": subnet, "gateway": subnet.rsplit(".", 1)[0] + ".1"}, **net_args)
    args = dict((k, v) for k, v in args.items() if v is not None)
    return [
        container(cache, stack, REDIS_IMAGE, ports=["6379"]),
        {"name": "net", "clockwork.connections.network_connection": args, "register": "net"},
        dict(container(api, stack, NGINX_IMAGE), **{"clockwork.connections.container": dict(
            name=api, image=NGINX_IMAGE, stack=stack, contributions=["{{ net.contribution }}"])}),
        {"name": "verify", "clockwork.connections.verify": {"checks": "{{ net.contribution.checks }}"}},
    ]


def random_subnet():
    return "10.%d.%d.0/24" % (random.randint(100, 250), random.randint(0, 250))


def test_network_check_apply_idempotent_check(stack):
    subnet = random_subnet()
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    api, cache, network = stack + "-api", stack + "-cache", stack + "-backend"
    tasks = network_tasks(stack, subnet, gateway=gateway)

    before = engine_state()
    check = playbook(tasks[1:2], check=True, diff=True)
    # In check mode the `to` container does not exist yet: reported, not failed on.
    assert check.rc == 0, check.output
    assert check.result("net")["actions"] == ["create network %s" % network], check.details
    assert engine_state() == before, "check mode changed Docker's state"

    applied = playbook(tasks)
    assert applied.rc == 0, applied.output
    assert applied.result("net")["changed"] is True, applied.details
    attrs = inspect("network", network)
    assert attrs["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
    assert attrs["Labels"]["io.clockwork.stack"] == stack
    attached = sorted(c["Name"] for c in attrs["Containers"].values())
    assert attached == [api, cache]
    assert cache in inspect("container", cache)["NetworkSettings"]["Networks"][network]["Aliases"]
    env_key = stack.upper().replace("-", "_") + "_CACHE_HOST"
    assert env_of(api)[env_key] == cache
    docker("exec", api, "ping", "-c", "1", cache)
    docker("exec", api, "nc", "-z", cache, "6379")
    reports = applied.result("verify")["checks"]
    assert [r["ok"] for r in reports] == [True] and "accepts TCP" in reports[0]["msg"], applied.details
    assert applied.result("verify")["changed"] is False, applied.details

    again = playbook(tasks)
    assert again.rc == 0, again.output
    assert not again.changed, again.details

    state = engine_state()
    last = playbook(tasks, check=True)
    assert last.rc == 0 and not last.changed, last.details
    assert engine_state() == state


def test_internal_network_has_no_way_out(stack):
    api = stack + "-api"
    run = playbook(network_tasks(stack, random_subnet(), internal=True))
    assert run.rc == 0, run.output
    assert inspect("network", stack + "-backend")["Internal"] is True
    kinds = [(r["kind"], r["ok"]) for r in run.result("verify")["checks"]]
    assert kinds == [("dns_tcp", True), ("no_route_out", True)], run.details
    # Real traffic, between our own containers only: a server on another network is
    # reachable from a container there, and not from api, which is only on the internal one.
    outside, control = stack + "-outside", stack + "-control"
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-public")
    for name in (outside, control):
        docker("run", "-d", "--name", name, "--label", "io.clockwork.stack=" + stack,
               "--network", stack + "-public", NGINX_IMAGE)
    address = inspect("container", outside)["NetworkSettings"]["Networks"][stack + "-public"]["IPAddress"]
    assert list(inspect("container", api)["NetworkSettings"]["Networks"]) == [stack + "-backend"]
    probe = "nc -z -w 2 %s 80 && echo reached || echo blocked" % address
    docker("exec", control, "sh", "-c", "until nc -z %s 80; do sleep 0.2; done" % address)
    assert docker("exec", control, "sh", "-c", probe) == "reached"
    assert docker("exec", api, "sh", "-c", probe) == "blocked"


def test_drifted_network_is_recreated_but_not_with_a_foreign_container(stack):
    network, api, cache = stack + "-backend", stack + "-api", stack + "-cache"
    _run = playbook(network_tasks(stack, random_subnet()))
    assert _run.rc == 0, _run.output
    old_id = inspect("network", network)["Id"]

    # Owned network, only stack containers: recreated with the new subnet, both re-attached.
    new_subnet = random_subnet()
    rerun = playbook(network_tasks(stack, new_subnet))
    assert rerun.rc == 0, rerun.output
    assert rerun.result("net")["actions"][0].startswith("recreate network %s (subnet, gateway)" % network), \
        rerun.details
    attrs = inspect("network", network)
    assert attrs["Id"] != old_id and attrs["IPAM"]["Config"][0]["Subnet"] == new_subnet
    assert sorted(c["Name"] for c in attrs["Containers"].values()) == [api, cache]

    foreign = stack + "-foreign"
    docker("run", "-d", "--name", foreign, "--network", network, NGINX_IMAGE)
    try:
        blocked = playbook(network_tasks(stack, random_subnet()))
        assert blocked.rc != 0, blocked.output
        msg = blocked.result("net")["msg"]
        assert foreign in msg and "must be recreated" in msg, blocked.details
        assert inspect("network", network)["Id"] == attrs["Id"], "the network was touched"
    finally:
        docker("rm", "-f", foreign)


def test_foreign_network_with_matching_settings_is_used_not_owned(stack):
    network = stack + "-backend"
    subnet = random_subnet()
    docker("network", "create", "--subnet", subnet, network)
    try:
        run = playbook(network_tasks(stack, subnet, gateway=None))
        assert run.rc == 0, run.output
        assert "io.clockwork.stack" not in (inspect("network", network)["Labels"] or {})
        other = playbook(network_tasks(stack, subnet, internal=True, gateway=None)[1:2])
        assert other.rc != 0 and "not owned by stack" in other.result("net")["msg"], other.details
    finally:
        for name in (stack + "-api", stack + "-cache"):
            docker("rm", "-f", name, check=False)
        docker("network", "rm", network, check=False)


def test_unknown_to_resource_names_it_and_the_stack(stack):
    run = playbook([{"name": "net", "clockwork.connections.network_connection": {
        "from": "a", "to": stack + "-ghost", "network_name": stack + "-n", "stack": stack}}])
    assert run.rc != 0, run.output
    msg = run.result("net")["msg"]
    assert "resource %s-ghost does not exist in stack %s" % (stack, stack) in msg, run.details
    assert "Traceback" not in run.output, run.output


def dependency_task(stack, to, **extra):
    args = dict({"from": stack + "-app", "to": to, "stack": stack}, **extra)
    return {"name": "dep", "clockwork.connections.dependency_connection": args}


def test_dependency_waits_for_healthy(stack):
    slow = stack + "-slow"
    # Healthy only once a file appears, a few seconds after start.
    run = playbook([
        container(slow, stack, NGINX_IMAGE, wait=False,
                  command=["sh", "-c", "(sleep 3; touch /tmp/ready) & exec nginx -g 'daemon off;'"],
                  healthcheck={"test": "test -f /tmp/ready", "interval": "1s"}),
        dependency_task(stack, slow, timeout=30),
    ])
    assert run.rc == 0, run.output
    dep = run.result("dep")
    assert dep["changed"] is False, run.details
    assert dep["dependency"] == {"condition": "healthy", "state": "running", "health": "healthy"}, run.details
    check = playbook([dependency_task(stack, slow)], check=True)
    assert check.rc == 0 and check.result("dep")["changed"] is False, check.details


def test_dependency_times_out_with_log_lines(stack):
    never = stack + "-never"
    run = playbook([
        container(never, stack, NGINX_IMAGE, wait=False,
                  command=["sh", "-c", "echo still-warming-up; exec nginx -g 'daemon off;'"],
                  healthcheck={"test": "false", "interval": "1s", "retries": 1000}),
        dependency_task(stack, never, timeout=3),
    ])
    assert run.rc != 0, run.output
    msg = run.result("dep")["msg"]
    assert "did not become healthy within 3s" in msg and "still-warming-up" in msg, run.details
    assert "Traceback" not in run.output, run.output


def test_dependency_completed_successfully_and_check_mode_on_missing(stack):
    job = stack + "-job"
    run = playbook([
        container(job, stack, NGINX_IMAGE, state="present", command=["true"]),
        {"name": "start job", "command": "docker start %s" % job, "changed_when": False},
        dependency_task(stack, job, condition="completed_successfully", timeout=20),
    ])
    assert run.rc == 0, run.output
    assert run.result("dep")["dependency"]["state"] == "exited", run.details
    missing = playbook([dependency_task(stack, stack + "-later")], check=True)
    assert missing.rc == 0, missing.output
    assert missing.result("dep")["dependency"]["state"] == "absent", missing.details
    assert missing.result("dep")["changed"] is False, missing.details


def test_ipv6_network(stack):
    api, cache, network = stack + "-api", stack + "-cache", stack + "-backend"
    subnet = "fd00:c1:%x::/64" % random.randint(1, 0xfffe)
    tasks = network_tasks(stack, subnet, gateway=None, enable_ipv6=True)
    run = playbook(tasks)
    assert run.rc == 0, run.output
    attrs = inspect("network", network)
    assert attrs["EnableIPv6"] is True
    assert subnet in [pool["Subnet"] for pool in attrs["IPAM"]["Config"]]
    address = inspect("container", cache)["NetworkSettings"]["Networks"][network]["GlobalIPv6Address"]
    assert address.startswith(subnet.split("::")[0])
    docker("exec", api, "ping", "-6", "-c", "1", cache)
    again = playbook(tasks)
    assert again.rc == 0 and not again.changed, again.details
