"""The built wheel is the whole product: installed outside the source tree, `architect serve --example`
serves the dashboard (every page, and every script and stylesheet they load, ES-module imports
followed) and answers /v1.

The wheel is built offline from a copy of the sources (`pip wheel --no-build-isolation`, so no stale
`build/` folder of the checkout can add files a clean build would miss) and installed with `--no-deps`
into a fresh virtualenv. That virtualenv sees the already-installed dependencies through a `.pth` line
naming the test environment's site-packages; a `.pth` line only adds a folder to `sys.path`, so the
`.pth` files inside it (the editable install of the checkout) are not run and the wheel's copy of
`architect` is the one imported, which the test asserts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import openai

from architect.web.routes import PAGES
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = "Scripts" if os.name == "nt" else "bin"
# ES-module dependencies: static `import ... from "x"` / `export ... from "x"`, bare `import "x"`, and
# dynamic `import("x")` with a literal specifier.
_IMPORTS = (
    re.compile(r"^\s*(?:import|export)\b[^;'\"]*?\bfrom\s*([\"'])(?P<spec>[^\"']+)\1", re.M | re.S),
    re.compile(r"^\s*import\s*([\"'])(?P<spec>[^\"']+)\1", re.M),
    re.compile(r"\bimport\(\s*([\"'])(?P<spec>[^\"']+)\1\s*\)"),
)
_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}


class _Assets(HTMLParser):
    """The scripts and stylesheets an HTML page references."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(str(a["src"]))
        elif tag == "link" and "stylesheet" in (a.get("rel") or "").split() and a.get("href"):
            self.urls.append(str(a["href"]))


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _build_and_install(tmp: Path) -> tuple[Path, Path]:
    """Build the wheel from a copy of the sources, install it into a new virtualenv; the wheel and
    the virtualenv's python."""
    src = tmp / "src-copy"
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)])
    wheels = list(dist.glob("architect_llm-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / BIN / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(_run([str(python), "-c", code], env=_clean_env()).strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_test_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    _run(
        [
            *pip,
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",  # the dev environment's editable install is visible; never touch it
            "--no-compile",
            "-q",
            str(wheels[0]),
        ]
    )
    return wheels[0], python


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points at the checkout or the test's virtualenv."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ARCHITECT_CONFIG", "ARCHITECT_DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def _module_deps(url: str, source: str) -> list[str]:
    return [urljoin(url, m.group("spec")) for rx in _IMPORTS for m in rx.finditer(source)]


def _check_asset(client: httpx.Client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, f"{url}: {r.status_code}"
    suffix = Path(urlsplit(url).path).suffix
    ctype = r.headers["content-type"].split(";")[0].strip()
    assert ctype in _TYPES[suffix], f"{url}: content-type {ctype}"
    return r.text


def test_the_wheel_installed_elsewhere_serves_the_dashboard_and_v1(tmp_path: Path) -> None:
    t0 = time.monotonic()
    wheel, python = _build_and_install(tmp_path)
    package = ROOT / "src" / "architect"
    in_source = {
        f"architect/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(wheel) as z:
        in_wheel = {n for n in z.namelist() if n.startswith("architect/")}
    assert in_source == in_wheel, f"missing from the wheel: {sorted(in_source - in_wheel)}"
    run_dir, home = tmp_path / "cwd", tmp_path / "home"
    run_dir.mkdir()
    env = _clean_env(ARCHITECT_HOME=str(home), ARCHITECT_ADMIN_KEY="",
                     PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")  # fmt: skip
    where = _run([str(python), "-c", "import architect; print(architect.__file__)"], cwd=run_dir, env=env)
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(python.parent / "architect"), "serve", "--example", "--port", str(port)],
            cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()}"
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"serve did not become healthy: {log.read_text()}"
            time.sleep(0.1)

        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
            first = client.get("/ui")  # open mode: redirected to the overview with a new session
            assert first.status_code == 200 and first.url.path == "/ui/overview", (
                first.status_code,
                first.url,
            )
            seen: set[str] = set()
            queue: list[str] = []
            for slug in PAGES:
                r = client.get(f"/ui/{slug}")
                assert r.status_code == 200, f"/ui/{slug}: {r.status_code}"
                assert r.headers["content-type"].startswith("text/html")
                parser = _Assets()
                parser.feed(r.text)
                assert any(u.endswith(f"/pages/{slug}.js") for u in parser.urls), parser.urls
                queue += [urljoin(str(r.url), u) for u in parser.urls]
            while queue:
                url = queue.pop()
                if url in seen:
                    continue
                seen.add(url)
                text = _check_asset(client, url)
                if url.endswith(".js"):
                    queue += _module_deps(url, text)
            assert any(u.endswith("/ui/static/common.js") for u in seen), sorted(seen)  # reached by imports

        sdk = openai.OpenAI(base_url=base + "/v1", api_key="anything", max_retries=0)
        answer = sdk.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
    finally:
        proc.kill()
        proc.wait(10)
    print(f"wheel built, installed and checked in {time.monotonic() - t0:.1f} s")
