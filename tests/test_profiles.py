"""`make install-profiles`: `snakemake --profile slurm` as users type it (a bare name, looked up in Snakemake's user
config folder), a dry run that needs no SLURM installation, and no overwriting of an edited copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO
from .workflow_helpers import BIN

SLURM_TOOLS = ("sbatch", "sinfo", "squeue", "sacct", "scontrol", "srun", "scancel")


def make_install(home: Path, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), PYTHON=sys.executable)
    return subprocess.run(["make", "-s", "-C", str(REPO), "install-profiles", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def installed(home: Path, name: str) -> Path:
    return home / ".config" / "snakemake" / name / "config.yaml"


def no_slurm_path(tmp_path: Path) -> str:
    """PATH with this environment's bin folder and a few basic tools, and no SLURM client (sbatch, sinfo, …)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("which", "sh", "bash", "uname", "env", "cat", "git"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    path = os.pathsep.join([BIN, str(tools)])
    assert not any(shutil.which(t, path=path) for t in SLURM_TOOLS)
    return path


def test_install_then_bare_profile_name_dry_runs_without_slurm(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = make_install(home)
    assert result.returncode == 0, result.stderr
    for name, source in (("slurm", "slurm"), ("dvmap-local", "local")):
        assert installed(home, name).read_bytes() == (REPO / "profiles" / source / "config.yaml").read_bytes()
        assert f"installed {REPO / 'profiles' / source}" in result.stdout

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "config.yaml", work / "config.yaml")  # the default config
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "SNAKEMAKE_PROFILE")}
    env.update(HOME=str(home), PATH=no_slurm_path(tmp_path))
    dry = subprocess.run([str(Path(BIN) / "snakemake"), "--profile", "slurm", "-n", "-d", str(work)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-5000:]
    assert "This was a dry-run" in out
    assert "dvmap synth -o" in out  # printshellcmds: true, from the installed profile
    assert not (work / "results").exists()


def test_edited_copy_is_not_overwritten_unless_forced(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert make_install(home).returncode == 0
    again = make_install(home)
    assert again.returncode == 0 and "up to date" in again.stdout

    profile = installed(home, "slurm")
    edited = profile.read_text().replace("slurm_partition: cpu", "slurm_partition: my_cpus")
    assert edited != profile.read_text()
    profile.write_text(edited)
    refused = make_install(home)
    assert refused.returncode != 0
    assert "not overwriting" in refused.stderr and "FORCE=1" in refused.stderr
    assert profile.read_text() == edited

    forced = make_install(home, "FORCE=1")
    assert forced.returncode == 0, forced.stderr
    assert "replaced" in forced.stdout
    assert profile.read_bytes() == (REPO / "profiles/slurm/config.yaml").read_bytes()
    assert (profile.parent / "config.yaml.bak").read_text() == edited


def test_unedited_copy_follows_the_repository(tmp_path):
    """A copy nobody edited since it was installed is updated when the repository's profile changes."""
    source = tmp_path / "profiles"
    shutil.copytree(REPO / "profiles", source)
    dest = tmp_path / "snakemake"
    script = [sys.executable, str(REPO / "scripts/install_profiles.py"), "--profiles", str(source), "--dest", str(dest)]
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    (source / "slurm/config.yaml").write_text((source / "slurm/config.yaml").read_text() + "jobs: 7\n")
    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "updated" in result.stdout
    assert (dest / "slurm/config.yaml").read_text().endswith("jobs: 7\n")


def test_a_foreign_profile_of_the_same_name_is_left_alone(tmp_path):
    """A `slurm` profile that this script did not install (another pipeline's) is refused too."""
    dest = tmp_path / "snakemake"
    (dest / "slurm").mkdir(parents=True)
    (dest / "slurm/config.yaml").write_text("executor: slurm\njobs: 3\n")
    script = [sys.executable, str(REPO / "scripts/install_profiles.py"), "--dest", str(dest)]
    result = subprocess.run(script, capture_output=True, text=True)
    assert result.returncode != 0 and "not overwriting" in result.stderr
    assert (dest / "slurm/config.yaml").read_text() == "executor: slurm\njobs: 3\n"
    assert (dest / "dvmap-local/config.yaml").exists()  # the other profile is still installed
