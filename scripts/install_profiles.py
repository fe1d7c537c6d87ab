#!/usr/bin/env python3
"""Install dvmap's Snakemake profiles where Snakemake finds a bare profile name (`make install-profiles`).

`snakemake --profile NAME` looks NAME up in the working directory, then in the user's config folder
($XDG_CONFIG_HOME/snakemake, else ~/.config/snakemake), then in /etc/xdg/snakemake. This copies

    profiles/slurm -> <user config>/snakemake/slurm          (snakemake --profile slurm)
    profiles/local -> <user config>/snakemake/dvmap-local    (snakemake --profile dvmap-local)

and records what it installed (.dvmap-profile.json beside the copy). A copy that is already the same is left
alone; a copy that this script installed and nobody edited since is updated to the repository's version; a copy
that was edited (your partition and account, say) or that this script did not install is never overwritten
unless --force (`make install-profiles FORCE=1`), which keeps the old files as *.bak. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: source folder under profiles/ -> profile name in the user's config folder
PROFILES = {"slurm": "slurm", "local": "dvmap-local"}
STAMP = ".dvmap-profile.json"


def user_config_dir() -> Path:
    """Snakemake's user config folder (platformdirs' rule on Linux and other XDG systems)."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return Path(xdg if xdg else Path.home() / ".config") / "snakemake"


def digests(folder: Path, names) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() if (folder / name).is_file() else ""
            for name in names}


def install(source: Path, dest: Path, force: bool) -> tuple[bool, str]:
    """Install one profile folder; (ok, what happened)."""
    names = sorted(p.name for p in source.iterdir() if p.is_file())
    wanted = digests(source, names)
    if dest.exists() and not dest.is_dir():
        return False, f"{dest} exists and is not a folder; move it away first"
    if not dest.exists():
        dest.mkdir(parents=True)
        copy(source, dest, names, wanted)
        return True, f"installed {source} -> {dest}"
    have = digests(dest, names)
    if have == wanted:
        if not (dest / STAMP).exists():
            (dest / STAMP).write_text(json.dumps({"source": str(source), "files": wanted}, indent=1) + "\n")
        return True, f"up to date: {dest}"
    try:
        installed = json.loads((dest / STAMP).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        installed = None
    untouched = installed is not None and digests(dest, installed) == installed
    if untouched:
        copy(source, dest, names, wanted)
        return True, f"updated {dest} to the repository's {source} (the copy had not been edited)"
    if not force:
        changed = [n for n in names if have[n] != wanted[n]]
        return False, (f"not overwriting {dest}: its {', '.join(changed)} differs from {source} and was edited "
                       "since it was installed (or this script did not install it); compare the two, or run "
                       "`make install-profiles FORCE=1` to replace it (the old files are kept as *.bak)")
    for name in names:
        if (dest / name).is_file():
            shutil.copy2(dest / name, dest / f"{name}.bak")
    copy(source, dest, names, wanted)
    return True, f"replaced {dest} with {source} (FORCE; old files kept as *.bak)"


def copy(source: Path, dest: Path, names, wanted) -> None:
    for name in names:
        shutil.copy2(source / name, dest / name)
    (dest / STAMP).write_text(json.dumps({"source": str(source), "files": wanted}, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="replace edited copies (keeping them as *.bak)")
    parser.add_argument("--profiles", type=Path, default=REPO / "profiles", help="folder of the source profiles")
    parser.add_argument("--dest", type=Path, default=None, help="default: Snakemake's user config folder")
    args = parser.parse_args(argv)
    dest_root = args.dest or user_config_dir()
    ok = True
    for folder, name in PROFILES.items():
        done, message = install(args.profiles / folder, dest_root / name, args.force)
        print(("" if done else "error: ") + message, file=sys.stdout if done else sys.stderr)
        ok &= done
    if ok:
        print(f"set your partitions (and account) in {dest_root / 'slurm' / 'config.yaml'}, then: "
              "snakemake --profile slurm")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
