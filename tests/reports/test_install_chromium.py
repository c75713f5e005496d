"""scripts/install_chromium.sh against stub commands: idempotent, apt-get update before install, the fonts
the report names (reports/fonts.py) and poppler-utils."""

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
    for tool in ("id", "head", "chmod"):  # what the script and the stubs below run
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    log = tmp_path / "apt.log"
    fonts = tmp_path / "fonts"  # one file per installed font family: what the stub fc-list reports
    fonts.mkdir()
    # apt-get records its arguments; `install` puts the packages "on the system" (stub files).
    _stub(
        bin_dir / "apt-get",
        f"""echo "$*" >> {log}
if [ "$1" = install ]; then
  for p in "$@"; do
    case "$p" in
      chromium) echo "#!{BASH}" > {bin_dir}/chromium && chmod +x {bin_dir}/chromium ;;
      fonts-noto-core) : > "{fonts}/Noto Sans" && : > "{fonts}/Noto Sans Thai" ;;
      fonts-nanum) : > "{fonts}/NanumGothic" ;;
      fonts-wqy-microhei) : > "{fonts}/WenQuanYi Micro Hei" ;;
      fonts-noto-cjk) : > "{fonts}/Noto Sans CJK KR" ;;
      fonts-dejavu-core) : > "{fonts}/DejaVu Sans" ;;
      poppler-utils) for t in pdftotext pdffonts; do echo "#!{BASH}" > {bin_dir}/$t; chmod +x {bin_dir}/$t; done ;;
    esac
  done
fi
exit 0""",
    )
    _stub(bin_dir / "sudo", 'exec "$@"')
    _stub(
        bin_dir / "fc-list",
        f"""family="${{1#:family=}}"
[ -e "{fonts}/$family" ] && echo "$family"
exit 0""",
    )
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
    assert calls[1].startswith("install") and calls[1].split()[-7:] == [
        "chromium",
        "fonts-noto-core",
        "fonts-nanum",
        "fonts-wqy-microhei",
        "fonts-noto-cjk",
        "fonts-dejavu-core",
        "poppler-utils",
    ]


def test_installs_only_the_fonts_that_are_missing(fake_bin: Path) -> None:
    fonts = fake_bin.parent / "fonts"
    for family in ("Noto Sans", "Noto Sans Thai", "NanumGothic", "Noto Sans CJK KR", "DejaVu Sans"):
        (fonts / family).touch()
    assert _run(fake_bin).returncode == 0
    assert _apt_calls(fake_bin)[1].split()[-3:] == ["chromium", "fonts-wqy-microhei", "poppler-utils"]


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


def test_the_script_installs_every_font_the_report_names() -> None:
    import re

    from rapport.reports.fonts import FONT_STACKS

    checked = set(re.findall(r'has_font "([^"]+)"', SCRIPT.read_text()))
    named = {family for stack in FONT_STACKS.values() for family in stack}
    # fonts-noto-cjk brings Noto Sans CJK SC with KR (one package, one .ttc): checking KR is enough
    assert named - {"Noto Sans CJK SC"} <= checked, named - checked
