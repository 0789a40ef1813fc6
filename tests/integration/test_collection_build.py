"""`ansible-galaxy collection build` gives a tarball that installs and works the same."""
import os
import subprocess

from helpers import ROOT, VENV_BIN, inspect, NGINX_IMAGE


def test_built_tarball_installs_and_runs(tmp_path, stack):
    build = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build",
                            "--output-path", str(tmp_path), ROOT], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    tarball = tmp_path / "clockwork-connections-0.1.0.tar.gz"
    assert tarball.exists()
    install_dir = tmp_path / "installed"
    install = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--force",
                              "-p", str(install_dir), str(tarball)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    installed = install_dir / "ansible_collections/clockwork/connections"
    assert (installed / "plugins/modules/container.py").exists()
    assert not (installed / ".venv").exists() and not (installed / "collections").exists()

    (tmp_path / "none.cfg").write_text("[defaults]\n")
    # Outside the repository, with only the installed copy on the collections path.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(install_dir), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    doc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "clockwork.connections.container"],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert doc.returncode == 0 and str(installed) in doc.stdout, doc.stdout + doc.stderr
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - clockwork.connections.container: {name: %s-web, image: %s, stack: %s}\n"
        % (stack, NGINX_IMAGE, stack))
    run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", "ansible_python_interpreter=" + os.path.join(VENV_BIN, "python"), str(play)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert inspect("container", stack + "-web")["State"]["Status"] == "running"
