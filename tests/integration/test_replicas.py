"""Replicas and zero-downtime updates on one engine (issue #22), on a real engine.

A `poller` container of the stack curls the replicated `web` every 50 ms and prints one line per
request (OK or FAIL, with the container's clock in nanoseconds); the update window is the span
of the converging run, read on the same clock (host and containers share the kernel's). What is
asserted are counts (requests in the window, failures) and what docker inspect / exec see."""
import re
import subprocess
import time
import uuid

import pytest

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, as_text, docker, engine_state, env_of, inspect, playbook, remove_stack

MARK = "_clockwork_"   # in the names of containers a replacement sets aside or starts beside
# One line per request; $TARGET is the web resource's name, given as the poller's env (no value pasted here).
# curl is a client that tries the next address: Docker's DNS answers a name with every container that
# carries it, and for a moment after a container leaves (or before one that joins can be reached) with
# an address that does not answer. curl 7.88 moves to the next address after half of --connect-timeout
# when that is 3 s (with 2 s or less it gives up instead: measured); --max-time bounds the whole request.
# The seconds each request took are printed.
POLL = ('while true; do start=$(date +%s%N); '
        'out=$(curl -fsS --connect-timeout 3 --max-time 8 -o /dev/null -w "%{remote_ip} %{time_total}" '
        '"http://$TARGET/" 2>&1); rc=$?; '
        'if [ $rc -eq 0 ]; then echo "OK $start $out"; else echo "FAIL $start rc=$rc $out"; fi; '
        'sleep 0.05; done')
HEALTHY = {"test": ["CMD", "curl", "-fsS", "http://localhost/"], "interval": "1s", "retries": 30}
NEVER_HEALTHY = {"test": ["CMD", "false"], "interval": "1s", "retries": 1}
MIN_REQUESTS = 8   # requests the poller must have made during an update for it to prove anything (a loaded machine makes fewer)


def stack_task(stack, resources, connections=(), **extra):
    args = dict(name=stack, resources=resources, connections=list(connections))
    args.update(extra)
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


def web_resource(stack, replicas=3, mode="a", image=NGINX_IMAGE, healthcheck=None, **extra):
    resource = dict(name=stack + "-web", image=image, env={"MODE": mode}, healthcheck=healthcheck or HEALTHY,
                    stop_grace_period="2s", timeout=60)
    if replicas is not None:
        resource["replicas"] = replicas
    resource.update(extra)
    return resource


def poller_resource(stack):
    return dict(name=stack + "-poller", image=NGINX_IMAGE, env={"TARGET": stack + "-web"},
                command=["sh", "-c", POLL])


def web_stack(stack, poller=True, connection="service_mesh", **web):
    resources = [web_resource(stack, **web)]
    connections = []
    if poller:
        resources.append(poller_resource(stack))
        connections.append({"type": connection, "from": stack + "-poller", "to": stack + "-web"})
        if connection == "network":
            connections[-1]["network_name"] = stack + "-back"
        if connection == "service_mesh":
            connections[-1].update(health_check_path="/", health_check_timeout=20)
    return stack_task(stack, resources, connections)


def containers_of(stack, resource=None):
    """{name: id} of the stack's containers (of one resource when given)."""
    label = "label=io.clockwork.resource=%s" % resource if resource else "label=io.clockwork.stack=%s" % stack
    out = docker("ps", "-a", "--filter", "label=io.clockwork.stack=%s" % stack, "--filter", label,
                 "--format", "{{.Names}} {{.ID}}")
    found = dict(line.split() for line in out.splitlines())
    return dict((name, inspect("container", cid)["Id"]) for name, cid in found.items())


def stack_state(stack):
    """What the engine holds of this stack (the engine is shared with other tests)."""
    return dict((kind, [line for line in lines if stack in line]) for kind, lines in engine_state().items())


def leftovers(stack):
    names = docker("ps", "-a", "--format", "{{.Names}}").split()
    return [n for n in names if n.startswith(stack) and MARK in n]


def entries(run, kind="container"):
    return dict((e["name"], e) for e in run.result("stack")["entries"] if e.get("kind") == kind)


def converged(task, env=None, check_first=True):
    """check (nothing changes on the engine) -> apply -> idempotent -> check again."""
    stack = task["clockwork.connections.stack"]["name"]
    if check_first:
        before = stack_state(stack)
        check = playbook([task], check=True, env=env)
        assert check.rc == 0, check.output
        assert stack_state(stack) == before, "check mode changed the engine"
    run = playbook([task], env=env)
    assert run.rc == 0, run.output
    again = playbook([task], env=env)
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    state = stack_state(stack)
    last = playbook([task], check=True, env=env)
    assert last.rc == 0 and last.result("stack")["changed"] is False, last.output
    assert stack_state(stack) == state
    return (check if check_first else None), run


def log_lines(poller):
    return subprocess.run(["docker", "logs", poller], capture_output=True, text=True, timeout=60).stdout.splitlines()


def poll_lines(poller):
    return [line.split()[:2] for line in log_lines(poller) if re.match(r"^(OK|FAIL) \d+", line)]


def failed_lines(poller, start_ns, end_ns):
    """The poller's FAIL lines of a window, as printed (curl's exit code and message), for the report."""
    return [line for line in log_lines(poller)
            if line.startswith("FAIL ") and start_ns <= int(line.split()[1]) <= end_ns]


def slow_during(poller, start_ns, end_ns, seconds=1.0):
    """The requests of a window that succeeded after more than `seconds` (a wait on an address that
    no longer, or not yet, answers before the next one): measured and printed, not failures."""
    slow = []
    for line in log_lines(poller):
        words = line.split()
        if len(words) == 4 and words[0] == "OK" and start_ns <= int(words[1]) <= end_ns and float(words[3]) > seconds:
            slow.append(float(words[3]))
    return slow


def polled_during(poller, start_ns, end_ns):
    """(requests, failures) the poller counted between two moments of the shared clock."""
    lines = [(word, int(ts)) for word, ts in poll_lines(poller) if start_ns <= int(ts) <= end_ns]
    return len(lines), [ts for word, ts in lines if word == "FAIL"]


def events_of(stack, start_ns, end_ns):
    """The engine's container and network events of the stack in a window (ns timestamps), for the report."""
    out = docker("events", "--since", "%.3f" % (start_ns / 1e9), "--until", "%.3f" % (end_ns / 1e9),
                 "--format", "{{.TimeNano}} {{.Type}} {{.Action}} {{.Actor.Attributes.name}} "
                 "{{.Actor.Attributes.container}}")
    return [line for line in out.splitlines() if stack in line and "exec_" not in line]


def wait_polling(poller, count=10):
    deadline = time.time() + 30
    while time.time() < deadline:
        if len([w for w, _ in poll_lines(poller) if w == "OK"]) >= count:
            return
        time.sleep(0.2)
    raise AssertionError("the poller never reached web: %s" % poll_lines(poller)[-5:])


def printed_past(poller, end_ns, limit=8.5):
    """Wait until every request the poller started by `end_ns` is printed: one request started just
    before is printed when it ends (at most --max-time, 8 s, later). The poller makes one request at a
    time, so a printed request started after `end_ns` says all earlier ones are printed; a poller that
    prints nothing more is waited for `limit` seconds, as long as its slowest request may take."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(int(ts) > end_ns for _word, ts in poll_lines(poller)[-5:]):
            return
        time.sleep(0.2)


def timed_run(task, poller):
    """Run `task`; (run, start, end) of the run on the poller's clock, once every request the poller
    started by the end is printed (so it is counted)."""
    start = time.time_ns()
    run = playbook([task])
    end = time.time_ns()
    printed_past(poller, end)
    return run, start, end


@pytest.fixture
def other_image(stack):
    """A second local nginx image (the same one plus a label: another id, as a new release would be),
    removed after the stack's containers that use it."""
    tag = "clockwork-test/nginx:replicas-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "build", "-q", "-t", tag, "--label", "io.clockwork.test=replicas", "-"],
                   input="FROM %s\n" % NGINX_IMAGE, text=True, check=True, capture_output=True,
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    yield tag
    remove_stack(stack)
    docker("rmi", tag)


def assert_serves_every_replica(stack, names):
    for name in names:
        assert docker("exec", name, "curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}",
                      "http://localhost/") == "200"


# 1. Zero downtime ------------------------------------------------------------------------------

@pytest.mark.parametrize("replicas", [3, 1])
def test_an_update_rolls_without_a_failed_request(stack, other_image, replicas):
    web, poller = stack + "-web", stack + "-poller"
    names = [web] if replicas == 1 else ["%s-%d" % (web, k) for k in range(1, replicas + 1)]
    check, run = converged(web_stack(stack, replicas=replicas))
    assert sorted(entries(check)) == sorted(names + [poller]), check.details
    assert sorted(containers_of(stack, web)) == sorted(names)
    for number, name in enumerate(names, 1):
        labels = inspect("container", name)["Config"]["Labels"]
        assert labels["io.clockwork.resource"] == web and labels["io.clockwork.replica"] == str(number)
    wait_polling(poller)

    measured = []   # both updates are measured before the failures are asserted: the report has both counts
    for change, what in ((dict(mode="b"), "env"), (dict(mode="b", image=other_image), "image")):
        old = containers_of(stack, web)
        task = web_stack(stack, replicas=replicas, **change)
        check = playbook([task], check=True)
        assert check.rc == 0 and containers_of(stack, web) == old, check.output
        for name in names:
            entry = entries(check)[name]
            assert "replace start-first" in entry["actions"], as_text(entry)
            assert any(what in reason for reason in entry["reasons"]), as_text(entry)
        run, start, end = timed_run(task, poller)
        assert run.rc == 0, run.output
        requests, failures = polled_during(poller, start, end)
        assert requests > MIN_REQUESTS, "the poller made only %d requests during the update" % requests
        measured.append((what, requests, failed_lines(poller, start, end), events_of(stack, start, end)))
        slow = slow_during(poller, start, end)
        print("replicas %d, %s update: %d requests, %d failed, %d slower than 1 s (longest %.2f s)" % (
            replicas, what, requests, len(failures), len(slow), max(slow or [0])))
        now = containers_of(stack, web)
        assert sorted(now) == sorted(names), now
        assert not set(now.values()) & set(old.values()), "a replica was not replaced"
        assert all(inspect("container", cid) is None for cid in old.values()), "an old container is still there"
        for name in names:
            assert env_of(name)["MODE"] == "b"
            assert inspect("container", name)["Config"]["Image"] == change.get("image", NGINX_IMAGE)
            assert inspect("container", name)["Image"] == inspect("image", change.get("image", NGINX_IMAGE))["Id"]
        assert leftovers(stack) == []
        assert_serves_every_replica(stack, names)
        again = playbook([task])
        assert again.rc == 0 and again.result("stack")["changed"] is False, again.output
    assert len(docker("ps", "-q", "--filter", "label=io.clockwork.resource=%s" % web).split()) == replicas
    failed = [m for m in measured if m[2]]
    assert not failed, "requests failed during an update: %s" % "; ".join(
        "%s update: %d of %d failed: %s; engine events: %s" % (what, len(lines), requests, lines, events)
        for what, requests, lines, events in failed)


# 2. Broken update ------------------------------------------------------------------------------

def test_an_update_that_never_gets_healthy_leaves_the_old_replicas_serving(stack):
    web, poller = stack + "-web", stack + "-poller"
    converged(web_stack(stack), check_first=False)
    wait_polling(poller)
    old = containers_of(stack, web)

    broken = web_stack(stack, mode="b", healthcheck=NEVER_HEALTHY, timeout=8)
    run, start, end = timed_run(broken, poller)
    assert run.rc != 0 and "Traceback" not in run.output, run.output
    msg = run.result("stack")["msg"]
    assert "%s-1" % web in msg and "unhealthy" in msg, msg
    requests, failures = polled_during(poller, start, end)
    assert requests > MIN_REQUESTS and failures == [], "%d requests; failed: %s" % (requests, failures)
    assert containers_of(stack, web) == old, "a replica of the failed attempt changed the old ones"
    assert all(env_of(name)["MODE"] == "a" for name in old)
    assert leftovers(stack) == []

    check, fixed = converged(web_stack(stack, mode="b"))
    assert all(env_of(name)["MODE"] == "b" for name in containers_of(stack, web))
    assert sorted(containers_of(stack, web)) == sorted(old)


# 3. A database server updates stop-first and keeps its data -------------------------------------

@pytest.fixture
def pg_stack(stack):
    yield stack
    remove_stack(stack)
    for volume in docker("volume", "ls", "-q", "--filter", "name=%s" % stack).split():
        docker("volume", "rm", volume, check=False)


def psql(container, query):
    return docker("exec", container, "psql", "-U", "postgres", "-tAc", query)


@pytest.mark.parametrize("named_volume", [True, False])
def test_a_database_server_is_updated_stop_first_and_keeps_its_rows(pg_stack, named_volume):
    stack = pg_stack
    pg, app = stack + "-pg", stack + "-app"

    def task(mark):
        server = dict(name=pg, image=POSTGRES_IMAGE, env={"POSTGRES_PASSWORD": "pw-%s" % stack, "MARK": mark},
                      healthcheck={"test": "pg_isready -U postgres", "interval": "1s", "retries": 60}, timeout=90)
        if named_volume:
            server["mounts"] = [{"type": "volume", "source": stack + "-pgdata", "target": "/var/lib/postgresql/data"}]
        return stack_task(stack, [server, dict(name=app, image=NGINX_IMAGE)],
                          [{"type": "database", "from": app, "to": pg, "password": "pw-%s" % stack}])

    converged(task("a"))
    psql(pg, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survivor')")
    old_id = inspect("container", pg)["Id"]
    check = playbook([task("b")], check=True)
    assert check.rc == 0 and entries(check)[pg]["actions"][:1] == ["recreate"], check.details
    start = time.time_ns()
    _, run = converged(task("b"))
    assert entries(run)[pg]["actions"][:1] == ["recreate"], as_text(entries(run)[pg])
    # stop-first: the old server died before its replacement started (never two on one data directory)
    events = [line.split() for line in events_of(stack, start, time.time_ns())]
    died = [int(e[0]) for e in events if e[1:3] == ["container", "die"] and e[3].startswith(pg)]
    started = [int(e[0]) for e in events if e[1:3] == ["container", "start"] and e[3].startswith(pg)]
    assert died and started and max(died) < min(started), events
    assert not any("start-first" in a for a in entries(run)[pg]["actions"]), as_text(entries(run)[pg])
    assert inspect("container", pg)["Id"] != old_id and env_of(pg)["MARK"] == "b"
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    assert leftovers(stack) == []


# 4. Scaling ------------------------------------------------------------------------------------

def scaled(stack, replicas, env, expected):
    """check (reports `expected` actions, changes nothing) -> apply -> idempotent -> check again."""
    task = web_stack(stack, poller=False, replicas=replicas)
    check, run = converged(task, env=env)
    for name, actions in expected.items():
        assert entries(check)[name]["actions"][:len(actions)] == actions, as_text(entries(check)[name])
        assert entries(run)[name]["actions"][:len(actions)] == actions, as_text(entries(run)[name])
    return containers_of(stack, stack + "-web")


@pytest.mark.parametrize("in_process", ["auto", "never"])
def test_scaling_keeps_the_replicas_it_does_not_add_or_remove(stack, in_process):
    env = {"CLOCKWORK_STACK_IN_PROCESS": in_process}
    web = stack + "-web"
    three = scaled(stack, 3, env, dict(("%s-%d" % (web, k), ["create"]) for k in (1, 2, 3)))
    assert sorted(three) == ["%s-%d" % (web, k) for k in (1, 2, 3)]

    one = scaled(stack, 1, env, {web: ["rename %s-1 to %s" % (web, web)],
                                 web + "-2": ["remove"], web + "-3": ["remove"]})
    assert one == {web: three[web + "-1"]}, "scaling down recreated the kept replica"
    assert inspect("container", web)["State"]["StartedAt"] == inspect("container", three[web + "-1"])["State"][
        "StartedAt"]
    assert all(inspect("container", three[n]) is None for n in (web + "-2", web + "-3"))

    again = scaled(stack, 3, env, {web + "-1": ["rename %s to %s-1" % (web, web)],
                                   web + "-2": ["create"], web + "-3": ["create"]})
    assert again[web + "-1"] == three[web + "-1"], "scaling up recreated the kept replica"
    assert sorted(again) == sorted(three)
    assert_serves_every_replica(stack, sorted(again))
    for number, name in enumerate(sorted(again), 1):
        assert inspect("container", name)["Config"]["Labels"]["io.clockwork.replica"] == str(number)


def test_a_single_container_scales_up_without_a_restart(stack):
    web = stack + "-web"
    one = scaled(stack, None, None, {web: ["create"]})   # replicas not declared: one container, as before
    started = inspect("container", web)["State"]["StartedAt"]
    three = scaled(stack, 3, None, {web + "-1": ["rename %s to %s-1" % (web, web)], web + "-3": ["create"]})
    assert three[web + "-1"] == one[web]
    assert inspect("container", web + "-1")["State"]["StartedAt"] == started
    aliases = inspect("container", web + "-1")["NetworkSettings"]["Networks"]["%s_default" % stack]["Aliases"]
    assert web in aliases, aliases


# 5. DNS ----------------------------------------------------------------------------------------

def test_the_name_resolves_to_every_replica(stack):
    web, poller = stack + "-web", stack + "-poller"
    converged(web_stack(stack, connection="network"), check_first=False)
    replicas = ["%s-%d" % (web, k) for k in (1, 2, 3)]
    shared = set(inspect("container", poller)["NetworkSettings"]["Networks"])
    assert len(shared) == 2, shared   # the stack's default network and the connection's
    answered = set(line.split()[0] for line in docker("exec", poller, "getent", "ahostsv4", web).splitlines())
    by_network = {}
    for network in shared:
        # every network of the resource carries the alias: each replica is named on each of them
        by_network[network] = set(inspect("container", name)["NetworkSettings"]["Networks"][network]["IPAddress"]
                                  for name in replicas)
        assert len(by_network[network]) == 3, by_network
        for name in replicas:
            assert web in inspect("container", name)["NetworkSettings"]["Networks"][network]["Aliases"]
    # Docker's DNS answers from one network the two share: there, every replica's address.
    assert answered in by_network.values(), (answered, by_network)


# 6. Destroy and foreign containers -------------------------------------------------------------

def foreign(name):
    docker("create", "--name", name, "--label", "io.clockwork.stack=someone-else",
           "--label", "io.clockwork.resource=%s" % name.rsplit("-", 1)[0], NGINX_IMAGE, "true")


def test_destroy_removes_every_replica_and_nothing_else(stack):
    web = stack + "-web"
    converged(web_stack(stack), check_first=False)
    stranger = web + "-4"
    foreign(stranger)
    try:
        destroy = web_stack(stack)
        destroy["clockwork.connections.stack"]["state"] = "absent"
        before = stack_state(stack)
        check = playbook([destroy], check=True)
        assert check.rc == 0 and check.result("stack")["changed"] is True, check.output
        assert stack_state(stack) == before
        run = playbook([destroy])
        assert run.rc == 0, run.output
        assert containers_of(stack) == {}
        assert inspect("container", stranger) is not None, "destroy removed a container it does not own"
        _run = playbook([destroy])
        assert _run.result("stack")["changed"] is False, _run.details
    finally:
        docker("rm", "-f", stranger, check=False)


def test_preflight_refuses_a_foreign_container_under_a_replica_name(stack):
    web = stack + "-web"
    stranger = web + "-2"
    foreign(stranger)
    try:
        before = stack_state(stack)
        run = playbook([web_stack(stack)])
        assert run.rc != 0 and "Traceback" not in run.output, run.output
        msg = run.result("stack")["msg"]
        assert stranger in msg, msg
        after = stack_state(stack)
        assert after["containers"] == before["containers"], "a container was made before the refusal"
        assert inspect("container", stranger)["Config"]["Labels"]["io.clockwork.stack"] == "someone-else"
    finally:
        docker("rm", "-f", stranger, check=False)


# 7. Bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("in_process", ["auto", "never"])
def test_replicas_that_cannot_run_on_one_engine_are_refused_together(stack, in_process):
    resources = [
        dict(name=stack + "-zero", image=NGINX_IMAGE, replicas=0),
        dict(name=stack + "-fixed", image=NGINX_IMAGE, replicas=3, ports=["127.0.0.1:18080:80"]),
        dict(name=stack + "-pg", image=POSTGRES_IMAGE, replicas=2, env={"POSTGRES_PASSWORD": "pw-%s" % stack}),
        dict(name=stack + "-app", image=NGINX_IMAGE),
    ]
    connections = [{"type": "database", "from": stack + "-app", "to": stack + "-pg", "password": "pw-%s" % stack}]
    before = stack_state(stack)
    for check in (True, False):
        run = playbook([stack_task(stack, resources, connections)], check=check,
                       env={"CLOCKWORK_STACK_IN_PROCESS": in_process})
        assert run.rc != 0 and "Traceback" not in run.output, run.output
        msg = run.result("stack")["msg"]
        for name in ("zero", "fixed", "pg"):
            assert re.search(r"%s-%s\b.*\breplicas\b" % (re.escape(stack), name), msg), "%s: %s" % (name, msg)
        assert "pw-%s" % stack not in run.output, run.output
        assert stack_state(stack) == before, "something was made before the refusal"
