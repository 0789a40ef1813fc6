"""Network resources (issue 34) on a real engine, through the stack module: a network the stack makes
whether or not a connection needs it, a container on named networks only, drift (a changed field
recreates the network with the stack's containers reconnected, or is refused with a foreign container
on it), and destroy removing only the networks the stack made. The plan's side and the applier's logic
are in tests/unit/test_plan_network_resources.py."""
import random

from helpers import NGINX_IMAGE, docker, inspect, playbook


def random_subnet():
    return "10.%d.%d.0/24" % (random.randint(100, 250), random.randint(0, 250))


def declaration(stack, subnet, internal=True, extra=()):
    back, spare = stack + "-back", stack + "-spare"
    resources = [
        {"name": "back", "type": "network", "network_name": back, "internal": internal, "subnet": subnet,
         "gateway": subnet.rsplit(".", 1)[0] + ".1"},
        {"name": "spare", "type": "network", "network_name": spare},    # no container, no connection
        {"name": stack + "-api", "image": NGINX_IMAGE, "default_network": False,
         "networks": [{"name": back, "aliases": ["api"]}]},
        {"name": stack + "-web", "image": NGINX_IMAGE, "networks": [{"name": back}]},
    ] + list(extra)
    return [{"name": "stack", "clockwork.connections.stack": {"name": stack, "resources": resources},
             "register": "result"}]


def ours(stack):
    """The stack's containers (id, networks) and the networks named after it (id): what check mode must leave."""
    containers = {}
    for name in docker("ps", "-a", "--filter", "name=" + stack, "--format", "{{.Names}}").split():
        attrs = inspect("container", name)
        containers[name] = (attrs["Id"], sorted(attrs["NetworkSettings"]["Networks"]))
    networks = dict((n, inspect("network", n)["Id"])
                    for n in docker("network", "ls", "--filter", "name=" + stack, "--format", "{{.Name}}").split())
    return {"containers": containers, "networks": networks}


def network_entry(run, name):
    found = [e for e in run.result("stack")["entries"] if e["kind"] == "network" and e["name"] == name]
    assert len(found) == 1, run.details
    return found[0]


def reaches(source, target):
    return docker("exec", source, "sh", "-c", "nc -z -w 3 %s 80 && echo yes || echo no" % target) == "yes"


def test_network_resources_check_apply_idempotent_check(stack):
    subnet = random_subnet()
    api, web, back, spare = stack + "-api", stack + "-web", stack + "-back", stack + "-spare"
    tasks = declaration(stack, subnet)

    check = playbook(tasks, check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.details
    assert ours(stack) == {"containers": {}, "networks": {}}, "check mode made something"

    applied = playbook(tasks)
    assert applied.rc == 0 and applied.result("stack")["changed"] is True, applied.details
    assert network_entry(applied, spare)["actions"] == ["create network %s" % spare], applied.details
    attrs = inspect("network", back)
    assert attrs["Internal"] is True and attrs["Labels"]["io.clockwork.stack"] == stack
    assert attrs["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": subnet.rsplit(".", 1)[0] + ".1"}]
    assert inspect("network", spare)["Labels"]["io.clockwork.stack"] == stack, "made though nothing uses it"
    assert sorted(inspect("container", api)["NetworkSettings"]["Networks"]) == [back], "on its named network only"
    assert sorted(inspect("container", web)["NetworkSettings"]["Networks"]) == sorted([back, stack + "_default"])
    assert "api" in inspect("container", api)["NetworkSettings"]["Networks"][back]["Aliases"]
    assert reaches(web, "api") and reaches(web, api)

    state = ours(stack)
    again = playbook(tasks)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.details
    last = playbook(tasks, check=True)
    assert last.rc == 0 and last.result("stack")["changed"] is False, last.details
    assert ours(stack) == state


def test_a_changed_network_resource_is_recreated_or_refused_and_destroy_keeps_what_it_found(stack):
    subnet = random_subnet()
    api, web, back = stack + "-api", stack + "-web", stack + "-back"
    applied = playbook(declaration(stack, subnet))
    assert applied.rc == 0, applied.output
    before = ours(stack)

    # internal: true -> false: the network is made again, the stack's containers stay and are reconnected.
    changed = declaration(stack, subnet, internal=False)
    dry = playbook(changed, check=True, diff=True)
    assert dry.rc == 0 and dry.result("stack")["changed"] is True, dry.details
    assert ours(stack) == before, "check mode changed the network"
    rerun = playbook(changed)
    assert rerun.rc == 0, rerun.output
    assert network_entry(rerun, back)["actions"] == ["recreate network %s (internal)" % back], rerun.details
    after = ours(stack)
    assert after["networks"][back] != before["networks"][back] and inspect("network", back)["Internal"] is False
    assert after["containers"] == before["containers"], "the same containers, on the same networks"
    assert "api" in inspect("container", api)["NetworkSettings"]["Networks"][back]["Aliases"]
    assert reaches(web, "api")
    for check in (False, True):
        run = playbook(changed, check=check)
        assert run.rc == 0 and run.result("stack")["changed"] is False, run.details

    # A container of no stack on it: the change is refused, the network left as it is.
    foreign, found = stack + "-foreign", stack + "-found"
    docker("run", "-d", "--name", foreign, "--network", back, NGINX_IMAGE)
    docker("network", "create", found)   # a network the stack finds, of no stack: used, never removed
    try:
        blocked = playbook(declaration(stack, subnet, internal=True))
        assert blocked.rc != 0, blocked.output
        assert foreign in blocked.output and "must be recreated" in blocked.output, blocked.details
        assert inspect("network", back)["Id"] == after["networks"][back]
        docker("rm", "-f", foreign)

        kept = {"name": "found", "type": "network", "network_name": found}
        tasks = declaration(stack, subnet, internal=False, extra=[kept])
        run = playbook(tasks)
        assert run.rc == 0 and run.result("stack")["changed"] is False, run.details
        destroy = [dict(tasks[0], **{"clockwork.connections.stack": dict(tasks[0]["clockwork.connections.stack"],
                                                                        state="absent")})]
        removed = playbook(destroy)
        assert removed.rc == 0 and removed.result("stack")["changed"] is True, removed.details
        assert inspect("network", back) is None and inspect("network", stack + "-spare") is None
        assert inspect("network", found) is not None, "not the stack's: left"
    finally:
        docker("rm", "-f", foreign, check=False)
        docker("network", "rm", found, check=False)


def test_external_network_and_volume_are_used_as_they_are_and_left_by_destroy_with_purge(stack):
    """Compose's `external: true`: made by the test (as by whoever runs the stack), joined and mounted by
    the stack, never changed by it, left by its destroy with purge; missing, refused before any change."""
    net, vol, app = stack + "-ext-net", stack + "-ext-vol", stack + "-app"
    resources = [{"name": "outside", "type": "network", "network_name": net, "external": True},
                 {"name": "shared", "type": "volume", "volume_name": vol, "external": True},
                 {"name": app, "image": NGINX_IMAGE, "networks": [{"name": net}],
                  "mounts": [{"type": "volume", "source": vol, "target": "/data"}]}]
    tasks = [{"name": "stack", "clockwork.connections.stack": {"name": stack, "resources": resources},
              "register": "result"}]
    missing = playbook(tasks)
    assert missing.rc != 0 and "resource outside: external: network %s does not exist" % net in missing.output \
        and "resource shared: external: volume %s does not exist" % vol in missing.output, missing.details
    assert ours(stack) == {"containers": {}, "networks": {}}, "refused before any change"
    # Settings the stack would not give it (internal, a subnet of its own): never compared.
    docker("network", "create", "--internal", "--subnet", random_subnet(), "--label", "made.by=test", net)
    docker("volume", "create", "--label", "made.by=test", vol)
    try:
        before = (inspect("network", net), inspect("volume", vol))
        check = playbook(tasks, check=True, diff=True)
        assert check.rc == 0 and check.result("stack")["changed"] is True, check.details
        assert [e for e in check.result("stack")["entries"] if e["name"] in (net, vol) and e["changed"]] == [], \
            check.details
        applied = playbook(tasks)
        assert applied.rc == 0 and applied.result("stack")["changed"] is True, applied.details
        assert [e for e in applied.result("stack")["entries"] if e["name"] in (net, vol) and e["changed"]] == [], \
            applied.details
        attrs = inspect("container", app)
        assert net in attrs["NetworkSettings"]["Networks"]
        assert [m["Name"] for m in attrs["Mounts"] if m["Destination"] == "/data"] == [vol]
        for check_mode in (False, True):
            run = playbook(tasks, check=check_mode)
            assert run.rc == 0 and run.result("stack")["changed"] is False, run.details
        assert inspect("network", net)["Id"] == before[0]["Id"]
        assert inspect("network", net)["Labels"] == {"made.by": "test"} and inspect("volume", vol) == before[1]
        destroy = [dict(tasks[0], **{"clockwork.connections.stack": dict(
            tasks[0]["clockwork.connections.stack"], state="absent", purge=True)})]
        removed = playbook(destroy)
        assert removed.rc == 0 and removed.result("stack")["changed"] is True, removed.details
        assert inspect("container", app) is None
        assert inspect("network", net)["Id"] == before[0]["Id"] and inspect("volume", vol) == before[1], \
            "destroy with purge leaves what the stack did not make"
    finally:
        docker("rm", "-f", app, check=False)
        docker("network", "rm", net, check=False)
        docker("volume", "rm", vol, check=False)
