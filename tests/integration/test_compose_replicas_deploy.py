"""A compose file with replicas deployed through the stack role on the docker engine (issue #22's
replicas, imported by from_compose): `deploy.replicas` becomes the containers <name>-1..N, each
labelled with its replica and carrying the alias <name>, which Docker DNS answers with all of
them; `scale` does the same; the service reaching them over HTTP has its check pass.
check -> apply -> idempotent -> check, and --check changes nothing."""
import textwrap

from helpers import NGINX_IMAGE, as_text, docker, inspect
from test_compose_import_deploy import converged, deploy, state_of
from test_rotation import stack  # noqa: F401  (the stack fixture)


def replicated(tag):
    return textwrap.dedent("""\
        services:
          web-{t}:
            image: {nginx}
            expose: ["80"]
            stop_grace_period: 3s
            deploy:
              replicas: 2
              update_config: {{order: start-first}}
          worker-{t}:
            image: {nginx}
            scale: 2
          proxy-{t}:
            image: {nginx}
            environment:
              UPSTREAM_URL: http://web-{t}:80
        """).format(t=tag, nginx=NGINX_IMAGE)


def test_replicas_of_an_imported_file_on_the_docker_engine(stack, tmp_path):  # noqa: F811
    tag = stack.split("-")[-1]
    (tmp_path / "compose.yaml").write_text(replicated(tag))
    before = state_of(tag)
    dry = deploy(tmp_path, stack, check=True, diff=True)
    assert dry.rc == 0, dry.output
    assert converged(dry, stack)["changed"] is True, dry.details
    assert "replicas need" not in dry.output, dry.output
    assert state_of(tag) == before, "--check changed the engine"

    applied = deploy(tmp_path, stack)
    assert applied.rc == 0, applied.output
    checks = converged(applied, stack)["checks"]
    assert checks and all(c["ok"] for c in checks), as_text(checks)

    for service in ("web", "worker"):
        name = "%s-%s" % (service, tag)
        assert inspect("container", name) is None, "a replicated service has no container <name>"
        for replica in (1, 2):
            container = inspect("container", "%s-%d" % (name, replica))
            assert container is not None and container["State"]["Running"], (name, replica)
            labels = container["Config"]["Labels"]
            assert labels["io.clockwork.resource"] == name and labels["io.clockwork.replica"] == str(replica)
            networks = container["NetworkSettings"]["Networks"]
            assert all(name in (n.get("Aliases") or []) for n in networks.values()), networks
    proxy = "proxy-%s" % tag
    assert inspect("container", proxy)["Config"]["Labels"]["io.clockwork.replica"] == "1"
    # Docker DNS answers the service's name with every replica, as Compose's service name does.
    answer = docker("exec", proxy, "getent", "ahostsv4", "web-" + tag)
    addresses = set(line.split()[0] for line in answer.splitlines())
    assert len(addresses) == 2, addresses

    again = deploy(tmp_path, stack)
    assert again.rc == 0 and converged(again, stack)["changed"] is False, again.output
    state = state_of(tag)
    dry_again = deploy(tmp_path, stack, check=True, diff=True)
    assert dry_again.rc == 0 and converged(dry_again, stack)["changed"] is False, dry_again.output
    assert state_of(tag) == state
