"""`make docs` (scripts/docs.sh): the plugin docs and changelog fragments lint clean, the HTML site
lists every module, filter and role, each page with its examples; `antsibull-changelog release`
makes CHANGELOG.md for galaxy.yml's version, in a copy of the tree (never in the checkout)."""
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import yaml

from helpers import ROOT, VENV_BIN

HTML = os.path.join(ROOT, "docs/build/html")
ENV = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"])


def plugins(kind):
    """The collection's plugins of a kind, from its directories: new ones are covered as they come."""
    if kind == "role":
        return sorted(os.listdir(os.path.join(ROOT, "roles")))
    if kind == "module":
        folder = os.path.join(ROOT, "plugins/modules")
        return sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".py") and name != "__init__.py")
    names = []   # filters: every name a filter plugin file's FilterModule returns has a doc file
    for name in os.listdir(os.path.join(ROOT, "plugins/filter")):
        if name.endswith((".yml", ".yaml")):
            with open(os.path.join(ROOT, "plugins/filter", name)) as handle:
                names.append(yaml.safe_load(handle)["DOCUMENTATION"]["name"])
    return sorted(names)


class Page(HTMLParser):
    def __init__(self, path):
        super().__init__()
        self.links, self.ids, self.text = set(), set(), []
        with open(path, encoding="utf-8") as handle:
            self.feed(handle.read())
        self.text = "".join(self.text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.add(attrs["href"].split("#")[0])
        if attrs.get("id"):
            self.ids.add(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def site():
    build = subprocess.run([os.path.join(ROOT, "scripts/docs.sh")], cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    return Page(os.path.join(HTML, "index.html"))


def test_index_lists_every_module_filter_and_role(site):
    for kind in ("module", "filter", "role"):
        found = plugins(kind)
        assert found, kind
        for name in found:
            page = "%s_%s.html" % (name, kind)
            assert page in site.links, "the index does not list the %s %s" % (kind, name)
            assert os.path.exists(os.path.join(HTML, page)), page
            assert "examples" in Page(os.path.join(HTML, page)).ids, "%s has no examples" % page


def test_module_page_documents_options_returns_and_examples(site):
    page = Page(os.path.join(HTML, "stack_module.html"))
    assert "clockwork.connections.stack module" in page.text
    for section in ("parameters", "examples", "return-values"):
        assert section in page.ids, section
    for option in ("resources", "connections", "engine"):
        assert "parameter-" + option in page.ids, option
    assert "clockwork.connections.stack:" in page.text, "no example calls the module"


def test_changelog_lints_and_releases_the_current_version(tmp_path):
    lint = subprocess.run([os.path.join(VENV_BIN, "antsibull-changelog"), "lint"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    # A copy of what git tracks, at a path of the collection's shape; the checkout stays as it is.
    copy = tmp_path / "ansible_collections/clockwork/connections"
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, tracked):
        source = os.path.join(ROOT, name)
        if name.startswith("collections/") or not os.path.isfile(source):
            continue
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy / name)
    release = subprocess.run([os.path.join(VENV_BIN, "antsibull-changelog"), "release"], cwd=copy, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert release.returncode == 0, release.stdout + release.stderr
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    changelog = (copy / "CHANGELOG.md").read_text()
    assert re.search(r"^## v%s$" % re.escape(version.replace(".", "\\.")), changelog, re.M), changelog[:500]
    for module in plugins("module"):
        assert "clockwork\\.connections\\.%s " % module.replace("_", "\\_") in changelog, module
    assert not os.path.exists(os.path.join(ROOT, "CHANGELOG.md")), "the release wrote into the checkout"
