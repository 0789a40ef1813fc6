"""Issue 34 part 3: a container resource's `build` on the memory gateway (no Docker): the context
read as the stack action reads it (build_context.ship_builds), the stack run as the module runs it
(stack.run_stack), the image built by the memory engine's POST /build (docker/memory_images.py).
Cold builds once, a rerun builds nothing, an edited file rebuilds and rolls the container, a dry
run records that it would build and sends nothing, and every refusal names resource and field."""
import copy
import os
import shutil

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils import plan as plan_module
from ansible_collections.clockwork.connections.plugins.module_utils import stack as stack_module
from ansible_collections.clockwork.connections.plugins.module_utils.apply import build as builds
from ansible_collections.clockwork.connections.plugins.module_utils.apply.build import (
    BUILD_HASH_LABEL, build_problems, built_image, swarm_problem)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.preflight import Preflight
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.image_calls import (
    BuildFailed, read_build_stream)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_images import ImageEngine
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.plugin_utils.build_context import ship_builds
from ansible_collections.clockwork.connections.plugins.filter.summary import stack_summary

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, STACK, container, run

BuildingEngine = MemoryEngine   # it answers POST /build (memory_images.ImageEngine)
assert issubclass(MemoryEngine, ImageEngine)
DOCKERFILE = "FROM %s\nCOPY site /usr/share/nginx/html\nLABEL org.example.app=web\n" % NGINX


@pytest.fixture
def app(tmp_path):
    root = tmp_path / "app"
    (root / "site").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "site" / "index.html").write_text("<h1>v1</h1>\n")
    return root


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


def engine_with_images():
    return BuildingEngine(images=copy.deepcopy(ms.IMAGES))


def declaration(app, **build):
    """One build-only resource `web` (no image: the plan gives it the tag a build makes), and a plain one beside it."""
    web = {"name": "web", "build": dict({"context": str(app)}, **build), "ports": ["80"], "update_order": "start-first"}
    return [web, {"name": "cache", "image": NGINX}], []


def shipped_params(base, tmp_path, resources, connections, **options):
    """The stack's parameters as the action sends them: each context read, its tar where the module reads it."""
    kept = tmp_path / "remote-tmp"
    kept.mkdir(exist_ok=True)

    def transfer(local):
        return shutil.copy(local, str(kept))
    return ms.params(base, ship_builds(resources, lambda p: p, transfer), connections, **options)


def build_calls(engine, since=0):
    return [c for c in engine.calls[since:] if c.method == "build"]


def image_removals(actions):
    return [a for a in actions if a.startswith("remove image ")]


def without_image_removals(actions):
    """The actions but a replaced image's removal, which comes with the old container, or with the stack's
    lock when the lock container was made from that image (it takes the engine's smallest)."""
    return [a for a in actions if not a.startswith("remove image ")]


def image_of(engine, name):
    return container(engine, name)["Image"]


# -- the stack on the memory gateway -----------------------------------------------------------

def test_cold_builds_once_and_runs_the_built_image(app, base, tmp_path):
    engine = engine_with_images()
    report, gateway = run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert report["changed"]
    assert len(build_calls(engine)) == 1
    assert ms.entry(report, "build", "web") == {
        "kind": "build", "name": "web", "changed": True, "actions": ["build"],
        "reasons": ["no image %s-web:clockwork yet" % STACK, "image %s-web:clockwork" % STACK]}
    assert "build web: built (no image %s-web:clockwork yet, image %s-web:clockwork)" % (STACK, STACK) in \
        stack_summary(report)
    assert "build image %s-web:clockwork" % STACK in gateway.actions
    image = engine.inspect_or_none("image", "%s-web:clockwork" % STACK)
    assert image_of(engine, "web") == image["Id"]
    labels = image["Config"]["Labels"]
    assert labels["org.example.app"] == "web" and labels[BUILD_HASH_LABEL].startswith("sha256:")
    assert image["Config"]["ExposedPorts"] == {"80/tcp": {}}, "the base image's configuration is kept"


def test_rerun_builds_nothing_and_changes_nothing(app, base, tmp_path):
    engine = engine_with_images()
    run(engine, shipped_params(base, tmp_path, *declaration(app)))
    since = len(engine.calls)
    report, gateway = run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert not report["changed"], report["entries"]
    assert build_calls(engine, since) == []
    assert not [e for e in report["entries"] if e["kind"] == "build"]
    assert not [a for a in gateway.actions if a.startswith("build")]


def test_an_edited_source_file_rebuilds_and_rolls_the_container_start_first(app, base, tmp_path):
    engine = engine_with_images()
    run(engine, shipped_params(base, tmp_path, *declaration(app)))
    old_container, old_image = container(engine, "web")["Id"], image_of(engine, "web")
    cache = container(engine, "cache")["Id"]
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    since = len(engine.calls)
    report, gateway = run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert report["changed"] and len(build_calls(engine, since)) == 1
    assert image_of(engine, "web") != old_image and container(engine, "web")["Id"] != old_container
    assert container(engine, "cache")["Id"] == cache, "the resource that builds nothing is left alone"
    # start-first: the new container runs beside the old one, which then leaves, and it takes the name
    assert ms.without_lock(without_image_removals(gateway.actions)) == [
        "build image %s-web:clockwork" % STACK, "create container web_clockwork_next_<id>", "start container <id>",
        "disconnect container <id> from network %s_default" % STACK, "stop container <id>", "remove container <id>",
        "rename container <id> to web"]
    # The previous image stays: release 1 (kept: 5 by default) runs it, and a rollback to it needs it.
    assert image_removals(gateway.actions) == [] and engine.inspect_or_none("image", old_image) is not None
    since = len(engine.calls)
    report, _gateway = run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert not report["changed"] and build_calls(engine, since) == []


def built_images(engine):
    """The ids of the engine's images a stack built (they carry the build hash label)."""
    return sorted(i["Id"] for i in engine.images(all=True) if BUILD_HASH_LABEL in (i.get("Labels") or {}))


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_a_rebuild_leaves_no_image_behind_that_no_release_needs(app, base, tmp_path, order):
    """releases_kept 1: the previous image goes at the end of the run that rebuilt (the stack's lock takes
    it, once the release that ran it is pruned); a rerun removes nothing."""
    engine = engine_with_images()
    resources, connections = declaration(app)
    resources[0]["update_order"] = order
    run(engine, shipped_params(base, tmp_path, resources, connections, releases_kept=1))
    labels = engine.inspect_or_none("image", image_of(engine, "web"))["Config"]["Labels"]
    assert labels["io.clockwork.build-stack"] == STACK and "io.clockwork.stack" not in labels, \
        "a built image names its stack, not with the stack's label (its containers would be the stack's)"
    for version in ("v2", "v3"):
        (app / "site" / "index.html").write_text("<h1>%s</h1>\n" % version)
        previous = image_of(engine, "web")
        report, gateway = run(engine, shipped_params(base, tmp_path, resources, connections, releases_kept=1))
        assert report["changed"]
        assert built_images(engine) == [image_of(engine, "web")], "one image: the one the container runs"
        assert image_removals(gateway.actions) == ["remove image %s (built by the stack, nothing uses it)"
                                                   % previous[7:19]], gateway.actions
    again, gateway = run(engine, shipped_params(base, tmp_path, resources, connections, releases_kept=1))
    assert not again["changed"] and not [a for a in gateway.actions if "image" in a]


def test_the_images_kept_releases_run_stay_until_the_releases_are_pruned(app, base, tmp_path):
    engine = engine_with_images()
    images = []
    for version in ("v1", "v2", "v3"):
        (app / "site" / "index.html").write_text("<h1>%s</h1>\n" % version)
        run(engine, shipped_params(base, tmp_path, *declaration(app), releases_kept=2))
        images.append(image_of(engine, "web"))
    # Releases 2 and 3 are kept: release 2's image stays (untagged) for a rollback, release 1's is gone.
    assert engine.inspect_or_none("image", images[0]) is None
    assert engine.inspect_or_none("image", images[1])["RepoTags"] == []
    assert built_images(engine) == sorted(images[1:])


def test_a_replaced_image_something_else_uses_or_names_is_kept(app, base, tmp_path):
    engine = engine_with_images()
    run(engine, shipped_params(base, tmp_path, *declaration(app), releases_kept=1))
    first = image_of(engine, "web")
    engine.create_container(first, name="someone-elses")   # not the stack's, made from the built image
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    run(engine, shipped_params(base, tmp_path, *declaration(app), releases_kept=1))
    assert engine.inspect_or_none("image", first) is not None, "a container of somebody else's runs it"
    second = image_of(engine, "web")
    engine.add_image("mine/pinned:1", image_id=second)     # somebody tagged it too
    (app / "site" / "index.html").write_text("<h1>v3</h1>\n")
    _report, gateway = run(engine, shipped_params(base, tmp_path, *declaration(app), releases_kept=1))
    assert engine.inspect_or_none("image", second) is not None, "a tag of its own keeps it"
    assert image_removals(gateway.actions) == []
    engine.remove_container("someone-elses")
    assert engine.inspect_or_none("image", first) is not None, "nobody of ours removed it: it stays"
    (app / "site" / "index.html").write_text("<h1>v4</h1>\n")
    _report, gateway = run(engine, shipped_params(base, tmp_path, *declaration(app), releases_kept=1))
    assert engine.inspect_or_none("image", first) is None, "the next rebuild of the stack takes it"


def test_a_rebuild_no_container_uses_removes_the_previous_image_at_once(app, tmp_path):
    """On the gateway, in a run of stack shop (its lock made first): a tag built again when no container
    runs the image it named, and no release of the stack holds it."""
    engine = engine_with_images()
    gateway = DockerGateway(api=engine)
    gateway.create_container("clockwork-lock-shop", NGINX, labels={"io.clockwork.lock": "shop"})

    def shipped():
        return ship_builds([{"name": "web", "build": {"context": str(app)}}], lambda p: p,
                           lambda p: shutil.copy(p, str(tmp_path)))[0]["build"]
    first = builds.run_build(gateway, "shop-web:clockwork", shipped())[0]
    assert first["Config"]["Labels"]["io.clockwork.build-stack"] == "shop"
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    gateway.image("shop-web:clockwork")                     # the pre-flight reads it before the build
    second = builds.run_build(gateway, "shop-web:clockwork", shipped())[0]["Id"]
    assert second != first["Id"] and engine.inspect_or_none("image", first["Id"]) is None
    assert gateway.actions[-1] == "remove image %s (built by the stack, nothing uses it)" % first["Id"][7:19]
    # An image nobody built here (no build hash label) is never removed.
    assert gateway.prune_built_images("shop") == [] and engine.inspect_or_none("image", NGINX)


def test_an_ignored_file_edited_rebuilds_nothing(app, base, tmp_path):
    (app / ".dockerignore").write_text("*.log\n")
    engine = engine_with_images()
    run(engine, shipped_params(base, tmp_path, *declaration(app)))
    (app / "debug.log").write_text("noise")
    since = len(engine.calls)
    report, _gateway = run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert not report["changed"] and build_calls(engine, since) == []


@pytest.mark.parametrize("change", [{"args": {"VERSION": "2"}}, {"labels": {"tier": "front"}}])
def test_changed_build_settings_rebuild(app, base, tmp_path, change):
    engine = engine_with_images()
    run(engine, shipped_params(base, tmp_path, *declaration(app)))
    since = len(engine.calls)
    report, _gateway = run(engine, shipped_params(base, tmp_path, *declaration(app, **change)))
    assert report["changed"] and len(build_calls(engine, since)) == 1


def test_a_dry_run_records_would_build_and_sends_nothing(app, base, tmp_path):
    live = engine_with_images()
    run(live, shipped_params(base, tmp_path, *declaration(app)))
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    before, since = ms.snapshot(live), len(live.calls)
    image = image_of(live, "web")
    dry = dry_run_gateway(live=live)
    checked = stack_module.run_stack(dry, shipped_params(base, tmp_path, *declaration(app)))
    assert [c for c in live.calls[since:] if c.method in ms.WRITES or c.method == "build"] == []
    assert ms.snapshot(live) == before and image_of(live, "web") == image
    assert "build image %s-web:clockwork" % STACK in dry.actions
    assert checked["changed"] and ms.entry(checked, "container", "web")["changed"], "web would roll"
    assert "build web: would be built (its context, Dockerfile or settings changed, image %s-web:clockwork)" % STACK \
        in stack_summary(checked, dry_run=True)
    # Check mode by construction: the dry run records what a real run on the same state does.
    real = engine_with_images()
    (app / "site" / "index.html").write_text("<h1>v1</h1>\n")
    run(real, shipped_params(base, tmp_path, *declaration(app)))
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    _report, gateway = run(real, shipped_params(base, tmp_path, *declaration(app)))
    assert ms.without_lock(without_image_removals(dry.actions)) == ms.without_lock(without_image_removals(gateway.actions))
    assert image_removals(dry.actions) == image_removals(gateway.actions) == []   # release 1 still runs it


def test_a_dry_run_of_a_cold_stack_would_build(app, base, tmp_path):
    live = engine_with_images()
    dry = dry_run_gateway(live=live)
    checked = stack_module.run_stack(dry, shipped_params(base, tmp_path, *declaration(app)))
    assert checked["changed"] and "build image %s-web:clockwork" % STACK in dry.actions
    assert live.inspect_or_none("image", "%s-web:clockwork" % STACK) is None


# -- refusals, each naming the resource and field ------------------------------------------------

def test_a_failing_build_is_named_and_nothing_is_made(app, base, tmp_path):
    (app / "Dockerfile").write_text(DOCKERFILE + "RUN false\n")
    engine = engine_with_images()
    with pytest.raises(ClockworkError) as caught:
        run(engine, shipped_params(base, tmp_path, *declaration(app)))
    assert "resource web: build: image %s-web:clockwork could not be built: " % STACK in caught.value.msg
    assert "returned a non-zero code: 1" in caught.value.msg
    assert container(engine, "web") is None and container(engine, "cache") is None


def test_a_missing_base_image_is_named(app, base, tmp_path):
    (app / "Dockerfile").write_text("FROM example.invalid/nothing:1\n")
    with pytest.raises(ClockworkError, match="resource web: build: .*pull access denied for example.invalid/nothing"):
        run(engine_with_images(), shipped_params(base, tmp_path, *declaration(app)))


def test_no_build_when_something_else_is_wrong(app, base, tmp_path):
    """The builds run once every other check passed: another resource's missing image is reported,
    and nothing is built."""
    engine = engine_with_images()
    resources, connections = declaration(app)
    resources[1]["image"] = "example.invalid/absent:1"
    with pytest.raises(ClockworkError, match="resource cache: image: "):
        run(engine, shipped_params(base, tmp_path, resources, connections))
    assert build_calls(engine) == []


def test_a_context_not_read_on_the_controller_is_refused(app, base):
    with pytest.raises(ClockworkError, match="resource web: build: its context was not read"):
        run(engine_with_images(), ms.params(base, *declaration(app)))


def test_two_resources_building_one_image_differently_are_refused(app, base, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(str(app), str(other))
    (other / "site" / "index.html").write_text("other")
    resources, connections = declaration(app)
    resources[0]["image"] = "shared:1"
    twin = dict(copy.deepcopy(resources[0]), name="twin", build={"context": str(other)})
    with pytest.raises(ClockworkError) as caught:
        run(engine_with_images(), shipped_params(base, tmp_path, resources + [twin], connections))
    assert "resource web: build: image shared:1 is built by resource twin too" in caught.value.msg
    assert "resource twin: build: image shared:1 is built by resource web too" in caught.value.msg


def test_build_problems_name_the_field():
    problems = build_problems({"name": "web", "build": {
        "context": ".", "dockerfile": "../Dockerfile", "labels": {"io.clockwork.stack": "x", "ok": "1"},
        "args": {"A": None, "B": "1"}}})
    assert [p[0] for p in problems] == ["build.dockerfile", "build.labels", "build.args"]
    assert build_problems({"name": "web", "build": {"context": ".", "dockerfile": "docker/../Dockerfile"}}) == []
    assert build_problems({"name": "web"}) == []


def test_built_image_names():
    assert built_image("shop", {"name": "web", "build": {"context": "."}}) == "shop-web:clockwork"
    assert built_image("shop", {"name": "web", "image": "mine:1", "build": {"context": "."}}) == "mine:1"
    assert built_image("shop", {"name": "web", "image": "nginx"}) == "nginx"
    upper, lower = (built_image("shop", {"name": n, "build": {"context": "."}}) for n in ("Web", "web"))
    assert upper != lower and upper.startswith("shop-web-") and upper.endswith(":clockwork")
    odd = built_image("shop", {"name": "a_", "build": {"context": "."}})
    assert plan_module.IMAGE_REFERENCE.match(odd), odd


class _Nodes(object):
    def __init__(self, count):
        self.count = count

    def nodes(self):
        return [{"ID": str(n)} for n in range(self.count)]


class _PlanOn(object):
    def __init__(self, engine):
        self.engine = engine


def test_a_swarm_of_several_nodes_is_refused_one_node_is_not():
    problem = swarm_problem(_Nodes(3), _PlanOn("swarm"))
    assert problem.startswith("build: the image is built on this manager only, and the Swarm has 3 nodes")
    assert swarm_problem(_Nodes(1), _PlanOn("swarm")) is None
    assert swarm_problem(_Nodes(3), _PlanOn("docker")) is None


def test_a_swarm_stack_on_one_node_builds_on_the_manager_and_a_rebuild_updates_the_service(app, base, tmp_path):
    engine = BuildingEngine(images=copy.deepcopy(ms.IMAGES), swarm=True)
    resources, connections = declaration(app)
    stack = ms.params(base, ship_builds(resources, lambda p: p, _keep(tmp_path)), connections, engine="swarm")
    report, gateway = run(engine, stack)
    assert report["changed"] and len(build_calls(engine)) == 1
    assert "build image %s-web:clockwork" % STACK in gateway.actions
    first = _task_image_id(engine, "web")
    assert first == engine.inspect_or_none("image", "%s-web:clockwork" % STACK)["Id"]
    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    since = len(engine.calls)
    stack = ms.params(base, ship_builds(resources, lambda p: p, _keep(tmp_path)), connections, engine="swarm")
    report, _gateway = run(engine, stack)
    assert report["changed"] and len(build_calls(engine, since)) == 1
    assert _task_image_id(engine, "web") not in (None, first), "the service is updated to the rebuilt image"
    since = len(engine.calls)
    stack = ms.params(base, ship_builds(resources, lambda p: p, _keep(tmp_path)), connections, engine="swarm")
    report, _gateway = run(engine, stack)
    assert not report["changed"] and build_calls(engine, since) == []


def _task_image_id(engine, service):
    found = [s for s in engine.services() if s["Spec"]["Name"] == service]
    return found[0]["Spec"]["TaskTemplate"]["ContainerSpec"].get("Labels", {}).get("io.clockwork.image-id")


def _keep(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir(exist_ok=True)
    return lambda local: shutil.copy(local, str(kept))


# -- the pre-flight's record, and the gateway's stream reading -----------------------------------

def test_the_preflight_says_what_it_built_and_why(app, base, tmp_path):
    engine = engine_with_images()
    stack = shipped_params(base, tmp_path, *declaration(app))
    planned = Plan(STACK, stack["resources"], stack["connections"], base_dir=str(base))
    preflight = Preflight(DockerGateway(api=engine), planned)
    preflight.run()
    assert preflight.built == [{"kind": "build", "name": "web", "changed": True, "actions": ["build"],
                                "reasons": ["no image %s-web:clockwork yet" % STACK, "image %s-web:clockwork" % STACK]}]
    again = Preflight(DockerGateway(api=engine), planned)
    again.run()
    assert again.built == []


def test_the_build_stream_read():
    image_id, output = read_build_stream([{"stream": "Step 1/1 : FROM x\n"}, {"aux": {"ID": "sha256:abc"}},
                                          {"stream": "Successfully built abc\n"}])
    assert image_id == "sha256:abc" and output.endswith("Successfully built abc")
    assert read_build_stream([b'{"stream": "Successfully built 0123456789ab\\n"}'])[0] == "0123456789ab"
    with pytest.raises(BuildFailed) as caught:
        read_build_stream([{"stream": "Step 2/2 : RUN make\n"}, {"errorDetail": {"message": "boom"}, "error": "boom"}])
    assert caught.value.words == "boom\nStep 2/2 : RUN make"


def test_the_archive_is_read_from_where_the_action_put_it(app, base, tmp_path):
    stack = shipped_params(base, tmp_path, *declaration(app))
    archive = stack["resources"][0]["build"]["archive"]
    assert os.path.dirname(archive) == str(tmp_path / "remote-tmp")
    engine = engine_with_images()
    run(engine, stack)
    assert build_calls(engine)[0].kwargs["dockerfile"] == "Dockerfile"
    assert builds.BUILD_HASH_LABEL in build_calls(engine)[0].kwargs["labels"]


class _FailingBuild(object):
    def build(self, archive, tag, **options):
        raise BuildFailed("build failed", explanation="The command '/bin/sh -c exit 1' returned a non-zero code: 1\n"
                                                      "Step 3/3 : RUN curl -H 'token: tok-S3CRET' https://x | sh")


def test_a_failed_build_masks_build_arguments_whose_names_say_secret():
    build = {"archive": "/tmp/x.tar", "content_hash": "sha256:x", "args": {"API_TOKEN": "tok-S3CRET", "MODE": "prod"}}
    attrs, problem = builds.run_build(_FailingBuild(), "shop-web:clockwork", build)
    assert attrs is None and "tok-S3CRET" not in problem and "token: ********" in problem
    assert problem.startswith("build: image shop-web:clockwork could not be built: The command")


def test_the_plan_takes_a_build_only_resource_and_names_its_image(base):
    planned = Plan(STACK, [{"name": "web", "build": {"context": "."}}], [], base_dir=str(base))
    assert planned.specs["web"].image == "%s-web:clockwork" % STACK
    with pytest.raises(ClockworkError) as caught:
        Plan(STACK, [{"name": "web", "build": {"context": ".", "dockerfile": "/etc/passwd",
                                               "labels": {"io.clockwork.stack": "other"}}}], [], base_dir=str(base))
    assert "resource web: build.dockerfile: '/etc/passwd' is not a file inside the build context" in caught.value.msg
    assert "resource web: build.labels: io.clockwork.stack: the io.clockwork. prefix is reserved" in caught.value.msg
    with pytest.raises(ClockworkError, match="resource web: image: is required"):
        Plan(STACK, [{"name": "web"}], [], base_dir=str(base))
