"""scripts/install_chromium.sh against stub commands: idempotent, apt-get update before install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_chromium.sh"
BASH = shutil.which("bash")


def _stub(path: Path, body: str) -> None:
    path.write_text("#!" + str(BASH) + "\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A PATH with only what the script needs, so the real chromium and apt-get stay out of reach."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "head", "chmod"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    log = tmp_path / "apt.log"
    # apt-get records its arguments; `install` puts the packages "on the system" (stub files).
    _stub(bin_dir / "apt-get", f"""echo "$*" >> {log}
if [ "$1" = install ]; then
  for p in "$@"; do
    [ "$p" = chromium ] && echo "#!{BASH}" > {bin_dir}/chromium && chmod +x {bin_dir}/chromium
    [ "$p" = fonts-wqy-microhei ] && : > {tmp_path}/font-cjk
    [ "$p" = fonts-tlwg-loma-ttf ] && : > {tmp_path}/font-th
  done
fi
exit 0""")
    _stub(bin_dir / "sudo", 'exec "$@"')
    _stub(bin_dir / "fc-list", f"""case "$1" in
  :lang=ko|:lang=zh-cn) [ -e {tmp_path}/font-cjk ] && echo "WenQuanYi Micro Hei" ;;
  :lang=th) [ -e {tmp_path}/font-th ] && echo "Loma" ;;
esac
exit 0""")
    return bin_dir


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([str(BASH), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def _apt_calls(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_installs_what_is_missing_after_an_update(fake_bin: Path) -> None:
    result = _run(fake_bin)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(fake_bin / "chromium")
    calls = _apt_calls(fake_bin)
    assert calls[0].startswith("update")
    assert calls[1].startswith("install") and calls[1].split()[-3:] == [
        "chromium", "fonts-wqy-microhei", "fonts-tlwg-loma-ttf"
    ]


def test_second_run_touches_nothing(fake_bin: Path) -> None:
    assert _run(fake_bin).returncode == 0
    calls = len(_apt_calls(fake_bin))
    again = _run(fake_bin)
    assert again.returncode == 0
    assert again.stdout.strip() == str(fake_bin / "chromium")
    assert len(_apt_calls(fake_bin)) == calls  # no apt-get at all when everything is there


def test_fails_when_chromium_cannot_be_installed(fake_bin: Path) -> None:
    _stub(fake_bin / "apt-get", "exit 0")  # "succeeds" but installs nothing
    result = _run(fake_bin)
    assert result.returncode == 1
    assert "chromium is still not on PATH" in result.stderr
