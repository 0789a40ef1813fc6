"""README's Layout names every file under plugins/ with its one job, in a tree that follows the
folders, and names no file that is not there.

The tree is the first code block of the "## Layout" section. A line is an entry when it starts
with names (a folder ends in `/`, a file in .py or .yml), and its job follows after two spaces or
more; a line that starts with other words continues the job above. An entry belongs to the
nearest folder above it that is indented less. A folder's __init__.py is named with its folder.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
NAME = re.compile(r"^[\w.<>-]+(/[\w.<>-]+)*(/|\.py|\.yml)$")
DOCUMENTED = (".py", ".yml")   # the code, and the filters' documentation


def layout_block(text):
    """The lines of the Layout section's first code block."""
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].split("\n")[1:]


def entries(lines):
    """(path relative to the checkout, its job, line in the block) of every entry, folders ending in '/'."""
    found, folders = [], []   # folders: (indent, path) of the folders open above
    for number, line in enumerate(lines, 1):
        indent = len(line) - len(line.lstrip(" "))
        names, _, job = line.strip().partition("  ")
        names = names.split(" ")
        if not line.strip() or not all(NAME.match(name) for name in names):
            continue   # a job's next line, or no entry
        while folders and folders[-1][0] >= indent:
            folders.pop()
        parent = folders[-1][1] if folders else ""
        for name in names:
            found.append((parent + name, job.strip(), number))
        if len(names) == 1 and names[0].endswith("/"):
            folders.append((indent, parent + names[0]))
    return found


def layout():
    with open(README) as handle:
        return entries(layout_block(handle.read()))


def plugin_files():
    for folder, dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(DOCUMENTED):
                yield os.path.relpath(os.path.join(folder, name), ROOT)


def test_every_file_under_plugins_is_in_the_layout():
    named = set(path for path, _job, _number in layout())
    missing = [path for path in plugin_files() if path not in named
               and not (os.path.basename(path) == "__init__.py" and os.path.dirname(path) + "/" in named)]
    assert not missing, "README's Layout does not name:\n" + "\n".join(missing)


def test_every_name_in_the_layout_is_there():
    absent = ["README Layout line %d: %s" % (number, path) for path, _job, number in layout()
              if not os.path.exists(os.path.join(ROOT, path))]
    assert not absent, "README's Layout names what is not there:\n" + "\n".join(absent)


def test_every_file_in_the_layout_says_its_job():
    silent = ["README Layout line %d: %s" % (number, path) for path, job, number in layout()
              if not path.endswith("/") and not job]
    assert not silent, "named without its job:\n" + "\n".join(silent)


def test_layout_keeps_the_three_words_apart():
    """The Docker gateway (how we reach the engine), the target (docker or swarm: which applier),
    the database engine (PostgreSQL, MySQL, Redis): the Layout says which is which."""
    with open(README) as handle:
        section = handle.read().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    assert [word for word in ("Docker gateway", "target", "database engine") if word not in section] == []


def test_entries_follow_the_folders():
    """The parsing itself, on a small tree: nesting by indentation, jobs on two lines, several names."""
    lines = ["plugins/",
             "  module_utils/        the logic",
             "    plan.py            the plan",
             "    docker/            the gateway",
             "      gateway.py       reads and writes,",
             "                       and what they forget",
             "    a.py b.py          both",
             "  filter/",
             "    graph.py           filters",
             "roles/stack/           the role"]
    assert [path for path, _job, _number in entries(lines)] == [
        "plugins/", "plugins/module_utils/", "plugins/module_utils/plan.py", "plugins/module_utils/docker/",
        "plugins/module_utils/docker/gateway.py", "plugins/module_utils/a.py", "plugins/module_utils/b.py",
        "plugins/filter/", "plugins/filter/graph.py", "roles/stack/"]
