"""``python -m ipckit_peer``: the installation check, in a subprocess of this very Python."""

import json
import os
import subprocess
import sys

import ipckit

import ipckit_peer

PEER_DIR = os.path.dirname(os.path.abspath(ipckit_peer.__file__))
IPCKIT_DIR = os.path.dirname(os.path.abspath(ipckit.__file__))


def run(args, cwd, pythonpath=None):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    result = subprocess.run(
        [sys.executable] + args, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=60,
    )
    return result.returncode, result.stdout, result.stderr


def hidden_ipckit(tmp_path):
    """A directory whose ``ipckit`` fails to import as a missing one does; first on PYTHONPATH, it
    hides the installed reference ipckit, while ipckit_peer still comes from where it is installed."""
    fake = tmp_path / "hide-ipckit"
    fake.mkdir(exist_ok=True)
    (fake / "ipckit.py").write_text(
        'raise ModuleNotFoundError("No module named \'ipckit\' (hidden by the test)", name="ipckit")\n'
    )
    return [str(fake), os.path.dirname(PEER_DIR)]


def test_reports_versions_and_locations(tmp_path):
    code, out, err = run(["-m", "ipckit_peer"], tmp_path)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "ipckit_peer %s in %s" % (ipckit_peer.__version__, PEER_DIR)
    assert lines[1] == "python %s at %s" % (sys.version.split()[0], sys.executable)
    assert lines[2] == "ipckit %s in %s" % (ipckit.__version__, IPCKIT_DIR)
    assert lines[-1] == "ready"


def test_json(tmp_path):
    code, out, err = run(["-m", "ipckit_peer", "--json"], tmp_path)
    assert code == 0, out + err
    info = json.loads(out)
    assert info["ok"] is True
    assert info["ipckit_peer"] == {"version": ipckit_peer.__version__, "location": PEER_DIR}
    assert info["python"] == {"executable": sys.executable, "version": sys.version.split()[0]}
    assert info["ipckit"] == {"version": ipckit.__version__, "location": IPCKIT_DIR}
    assert isinstance(info["sys_path"], list)


def test_fails_without_ipckit(tmp_path):
    code, out, err = run(["-m", "ipckit_peer"], tmp_path, hidden_ipckit(tmp_path))
    assert code == 1, out + err
    assert out.splitlines()[0] == "ipckit_peer %s in %s" % (ipckit_peer.__version__, PEER_DIR)
    assert "ipckit: cannot import (ModuleNotFoundError: No module named 'ipckit' (hidden by the test))" in out
    assert str(tmp_path / "hide-ipckit") in out  # sys.path, where it looked
    assert out.splitlines()[-1] == "not ready"
    assert err == ""

    code, out, err = run(["-m", "ipckit_peer", "--json"], tmp_path, hidden_ipckit(tmp_path))
    assert code == 1, out + err
    info = json.loads(out)
    assert info["ok"] is False
    assert info["ipckit"]["error"].startswith("ModuleNotFoundError: No module named 'ipckit'")


def test_import_still_fails_without_ipckit(tmp_path):
    # Only `python -m ipckit_peer` gets the package without ipckit; an import fails as before.
    code, out, err = run(["-c", "import ipckit_peer"], tmp_path, hidden_ipckit(tmp_path))
    assert code == 1
    assert "No module named 'ipckit' (hidden by the test)" in err


def test_usage(tmp_path):
    code, out, err = run(["-m", "ipckit_peer", "--nope"], tmp_path)
    assert code == 2
    assert "usage: python -m ipckit_peer [--json]" in err
