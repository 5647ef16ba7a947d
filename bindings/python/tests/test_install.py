"""`make install` gives a working pkg-config setup: a C program builds against the installed
copy with `cc app.c $(pkg-config --cflags --libs reparo)` and runs; the `reparo` tool runs
from the prefix."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("pkg-config") is None, reason="needs cc and pkg-config")
def test_make_install_and_pkg_config(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-C", str(ROOT), "install", f"PREFIX={prefix}"], check=True, capture_output=True)
    for relative in ["bin/reparo", "lib/libreparo.so", "include/reparo.h", "lib/pkgconfig/reparo.pc"]:
        assert (prefix / relative).exists(), relative
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"))
    version = subprocess.run(["pkg-config", "--modversion", "reparo"], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
    tool = subprocess.run([str(prefix / "bin/reparo"), "--version"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert tool.returncode == 0 and tool.stdout.strip() == version, tool.stdout + tool.stderr
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "reparo"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    source = tmp_path / "app.c"
    source.write_text(
        '#include <reparo.h>\n#include <stdio.h>\n#include <string.h>\n'
        'int main(void) {\n'
        '  reparo_model *m = NULL;\n'
        '  const char *spec = "{\\"input\\":[1,4,4],\\"classes\\":3,\\"layers\\":[{\\"type\\":\\"flatten\\"},{\\"type\\":\\"linear\\",\\"out\\":3}]}";\n'
        '  if (reparo_model_create(spec, 1, &m) != REPARO_OK) { puts(reparo_last_error()); return 1; }\n'
        '  float x[16] = {0}, y[3];\n'
        '  if (reparo_infer(m, x, 1, y, 3) != REPARO_OK) return 2;\n'
        '  printf("reparo %s ok\\n", reparo_version());\n'
        '  reparo_model_free(m);\n  return 0;\n}\n')
    binary = tmp_path / "app"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", str(source), "-o", str(binary), *flags], check=True)
    run = subprocess.run([str(binary)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok" in run.stdout


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf")
def test_published_library_and_tool() -> None:
    release = ROOT / ".build-release" / "release"

    def dynamic_section(path: Path) -> str:
        return subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True, text=True).stdout

    # SwiftPM names the file after the product (libreparo-capi.so); scripts/build.sh publishes
    # it as libreparo.so with that SONAME, which programs linked with -lreparo record.
    library = dynamic_section(release / "libreparo.so")
    assert "Library soname: [libreparo.so]" in library, library
    # -static-stdlib: neither needs Swift's shared libraries at run time.
    for name, dynamic in [("libreparo.so", library), ("reparo", dynamic_section(release / "reparo"))]:
        assert "libswift" not in dynamic, name + "\n" + dynamic
