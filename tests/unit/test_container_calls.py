"""The gateway's container calls on a recording API (no Docker): what they send, what they record,
and which of the gateway's memory a write makes it read afresh."""
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway


class RecordingAPI(object):
    """The SDK's APIClient shape: every call recorded as (method, args, kwargs)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "containers":
                return [{"Names": ["/web_clockwork_old_1"]}]
            if name == "volumes":
                return {"Volumes": [{"Name": "data"}], "Warnings": None}
            if name == "inspect_or_none":
                return {"Id": "f00d" * 16, "Name": "/" + args[1]}
            return {"Id": "c0de" * 16}
        return call

    def listings(self):
        return [call for call in self.calls if call[0] == "containers"]


def test_the_marked_containers_are_listed_once_until_a_write_may_change_them():
    api = RecordingAPI()
    gateway = DockerGateway(api=api)
    assert gateway.containers_named("_clockwork_") == [{"Names": ["/web_clockwork_old_1"]}]
    gateway.containers_named("_clockwork_")
    assert api.listings() == [("containers", (), {"all": True, "filters": {"name": "_clockwork_"}})]
    gateway.create_container("web", "nginx")   # not a marked name: the list still holds
    gateway.containers_named("_clockwork_")
    assert len(api.listings()) == 1
    for write in (lambda: gateway.create_container("web_clockwork_next_1", "nginx"),
                  lambda: gateway.rename("c0de" * 16, "web_clockwork_old_2"),
                  lambda: gateway.remove_container("c0de" * 16, force=True)):
        count = len(api.listings())
        write()
        gateway.containers_named("_clockwork_")
        assert len(api.listings()) == count + 1
    assert gateway.actions == ["create container web", "create container web_clockwork_next_1",
                               "rename container %s to web_clockwork_old_2" % ("c0de" * 16),
                               "remove container %s" % ("c0de" * 16)]


def test_a_removal_by_id_forgets_the_container_under_its_name():
    api = RecordingAPI()
    gateway = DockerGateway(api=api)
    attrs = gateway.container("web")
    gateway.remove_container(attrs["Id"], force=True, volumes=True)
    assert ("remove_container", (attrs["Id"],), {"force": True, "v": True}) in api.calls
    gateway.container("web")
    assert [c for c in api.calls if c[0] == "inspect_or_none"] == [("inspect_or_none", ("container", "web"), {})] * 2


def test_volumes_are_a_list_and_images_are_pulled_by_their_whole_reference():
    api = RecordingAPI()
    gateway = DockerGateway(api=api)
    assert gateway.volumes(filters={"label": "io.clockwork.stack=s"}) == [{"Name": "data"}]
    for image, pulled in (("nginx", ("nginx", "latest")), ("clockwork-test/nginx:1.22", ("clockwork-test/nginx", "1.22")),
                          ("registry:5000/app:1", ("registry:5000/app", "1")),
                          ("registry:5000/app", ("registry:5000/app", "latest")),
                          ("app@sha256:" + "a" * 64, ("app@sha256:" + "a" * 64, None))):
        gateway.pull(image)
        assert api.calls[-1] == ("pull", (pulled[0],), {"tag": pulled[1]})
