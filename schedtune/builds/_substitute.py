"""Trial builds that recompile only the target's executables.

A model is compiled once per flag set in two halves kept on disk:
- its executable sources (`--compile-to=executable-sources`), from which each executable is
  cut out as a standalone `hal.executable` (with the constants it inlines);
- the whole model up to the `hal` phase with executables left unlinked
  (`--iree-hal-link-executables=false`), so every executable is its own binary.
A trial compiles only the target's executables with the tuning spec
(`--compile-mode=hal-executable`), puts their binaries in place of the default ones and
finishes the build from the `hal` phase. Host code and every other executable stay byte for
byte those of the default build, so the trial is still timed inside the whole model.

IREE's own `--iree-hal-substitute-executable-object` would do this without the text splice,
but in IREE 3.13 it crashes llvm-cpu builds (LLVMCPUAssignImportOrdinalsPass) with or
without executable linking.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import threading

from iree.compiler import ir

from .. import iree
from ..errors import ToolError
from ..iree import functions_in

# The one line format of a serialised executable in the `hal` phase's text; every field is
# read back from the default build, the data is ours.
_BINARY_LINE = (
    '{indent}hal.executable.binary {visibility} @{symbol} <format = "{format}", '
    'data = dense<"0x{data}"> : vector<{size}xi8>, mime_type = "{mime}">'
)


@dataclasses.dataclass(frozen=True)
class _Binary:
    line: int  # index into the hal module's lines
    indent: str
    visibility: str
    symbol: str
    format: str
    mime: str


class SubstitutedBuilds:
    """Builds of one model (fixed flags) in which only some executables are recompiled.

    `prepare` compiles the two halves once (kept in `folder`, reused by later processes);
    `build` is safe to call from several threads.
    """

    def __init__(self, source: pathlib.Path, flags: list[str], folder: pathlib.Path, timeout_s: float) -> None:
        self.source = source
        self.flags = flags
        self.folder = folder
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._lines: list[str] | None = None
        self._binaries: dict[str, _Binary] = {}
        self._executable_of: dict[str, str] = {}  # dispatch function -> executable symbol

    # -- preparation -------------------------------------------------------------------
    def prepare(self) -> None:
        """Compile the sources and the unlinked `hal` module (once), index both."""
        with self._lock:
            if self._lines is not None:
                return
            done = self.folder / "done.json"
            if not done.exists():
                self._compile_halves()
            index = json.loads(done.read_text())
            self._executable_of = index["executable_of"]
            self._lines = (self.folder / "hal.mlir").read_text().splitlines()
            self._binaries = {name: _Binary(**b) for name, b in index["binaries"].items()}

    def _compile_halves(self) -> None:
        """Into a private folder renamed into place when complete: workers on one machine
        may prepare the same model at once, and none may read another's half-written files."""
        final = self.folder
        self.folder = final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        try:
            self._compile_halves_here()
            try:
                self.folder.rename(final)
            except OSError:  # another worker finished first; its copy is the same
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            if self.folder.exists() and self.folder != final:
                shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = final

    def _compile_halves_here(self) -> None:
        sources = self.folder / "sources.mlir"
        hal = self.folder / "hal.mlir"
        # Text, not bytecode: IREE 3.13 cannot write the model's dense_resource constants
        # as bytecode at these phases ("resource data missing in input IR").
        self._compile(self.source, sources, ["--compile-to=executable-sources"])
        self._compile(
            sources, hal, ["--compile-from=executable-sources", "--compile-to=hal", "--iree-hal-link-executables=false"]
        )
        executable_of = self._cut_executables(sources)
        binaries = self._index_binaries(hal)
        missing = sorted(set(executable_of.values()) - set(binaries))
        if missing:
            raise ToolError(f"executables without a binary in the hal phase: {', '.join(missing[:3])}")
        (self.folder / "done.json").write_text(
            json.dumps(
                {"executable_of": executable_of, "binaries": {n: dataclasses.asdict(b) for n, b in binaries.items()}}
            )
        )

    def _compile(self, source: pathlib.Path, output: pathlib.Path, phase: list[str]) -> None:
        built = iree.compile_model(source, output, [*self.flags, *phase], timeout_s=self.timeout_s)
        if not built.ok:
            raise ToolError(f"preparing substituted trial builds ({' '.join(phase)}): {built.error}")

    def _cut_executables(self, sources: pathlib.Path) -> dict[str, str]:
        """Write each executable as a standalone source; return function -> executable."""
        context = ir.Context()
        module = ir.Module.parse(sources.read_text(), context)
        executable_of: dict[str, str] = {}
        for op in module.body.operations:
            if op.operation.name != "hal.executable":
                continue
            name = ir.StringAttr(op.attributes["sym_name"]).value
            with context, ir.Location.unknown():
                alone = ir.Module.create()
                clone = op.operation.clone()
                alone.body.append(clone)
                # A private executable is dropped as unused by --compile-mode=hal-executable.
                clone.attributes["sym_visibility"] = ir.StringAttr.get("public")
            for func in functions_in(clone):
                executable_of[ir.StringAttr(func.attributes["sym_name"]).value] = name
            # Constants folded into the dispatch are dense_resource blobs: they are printed
            # only with the enclosing module, after its body.
            printed = str(alone)
            resources = printed[printed.index("{-#") :] if "{-#" in printed else ""
            (self.folder / f"{_file_name(name)}.mlir").write_text(clone.get_asm() + "\n" + resources)
        return executable_of

    def _index_binaries(self, hal: pathlib.Path) -> dict[str, _Binary]:
        """Where each executable's binary sits in the `hal` module's text, and its fields."""
        text = hal.read_text()
        context = ir.Context()
        module = ir.Module.parse(text, context)
        fields: dict[str, dict[str, str]] = {}
        for op in module.body.operations:
            if op.operation.name != "hal.executable":
                continue
            name = ir.StringAttr(op.attributes["sym_name"]).value
            binaries = [b for b in op.regions[0].blocks[0].operations if b.operation.name == "hal.executable.binary"]
            if len(binaries) != 1:
                raise ToolError(f"{name}: expected one binary in the hal phase, found {len(binaries)}")
            binary = binaries[0].operation
            fields[name] = {
                "symbol": ir.StringAttr(binary.attributes["sym_name"]).value,
                "format": ir.StringAttr(binary.attributes["format"]).value,
                "mime": ir.StringAttr(binary.attributes["mime_type"]).value,
                "visibility": ir.StringAttr(binary.attributes["sym_visibility"]).value
                if "sym_visibility" in binary.attributes
                else "public",
            }
        result: dict[str, _Binary] = {}
        current = None
        for i, line in enumerate(text.splitlines()):
            stripped = line.strip()
            if stripped.startswith("hal.executable ") and stripped.endswith("{"):
                current = stripped.split("@", 1)[1].split(" ", 1)[0]
            elif stripped.startswith("hal.executable.binary ") and current in fields:
                indent = line[: len(line) - len(line.lstrip())]
                result[current] = _Binary(line=i, indent=indent, **fields[current])
                current = None
        return result

    # -- per trial ---------------------------------------------------------------------
    def knows(self, functions: tuple[str, ...]) -> bool:
        self.prepare()
        return all(f in self._executable_of for f in functions)

    def executables(self, functions: tuple[str, ...]) -> list[str]:
        """The executables holding these dispatch functions (KeyError if one is unknown)."""
        self.prepare()
        return sorted({self._executable_of[f] for f in functions})

    def build(
        self, work: pathlib.Path, functions: tuple[str, ...], spec: pathlib.Path, configs_dir: pathlib.Path
    ) -> iree.CompileResult | None:
        """The model with the executables of `functions` compiled under `spec` (their configs
        dumped to `configs_dir`); every other executable is the default build's. None when a
        new executable's workgroup count is not a constant (this splice cannot set it)."""
        self.prepare()
        assert self._lines is not None
        work.mkdir(parents=True, exist_ok=True)
        replaced: dict[int, str] = {}
        counts: dict[str, tuple[int, ...]] = {}  # export -> workgroup count under the spec
        seconds = 0.0
        for name in self.executables(functions):
            built = iree.compile_model(
                self.folder / f"{_file_name(name)}.mlir",
                work / f"{_file_name(name)}.so",
                # The translated variant is printed for its workgroup count: the host code asks
                # for the default config's count, a config with other distribution tiles needs
                # its own (IREE folds it to constants in the host code).
                [*self.flags, "--compile-mode=hal-executable", f"--mlir-print-ir-after={_TRANSLATE_PASS}"],
                spec=spec,
                configs_dir=configs_dir,
                keep_configs=True,
                timeout_s=self.timeout_s,
            )
            seconds += built.seconds
            if not built.ok:
                return dataclasses.replace(built, seconds=seconds)
            found = _workgroup_counts(built.log)
            if found is None:
                return None
            counts.update(found)
            b = self._binaries[name]
            data = (work / f"{_file_name(name)}.so").read_bytes()
            replaced[b.line] = _BINARY_LINE.format(
                indent=b.indent,
                visibility=b.visibility,
                symbol=b.symbol,
                format=b.format,
                data=data.hex().upper(),
                size=len(data),
                mime=b.mime,
            )
        lines = _with_workgroup_counts(self._lines, replaced, counts)
        if lines is None:
            return None
        hal = work / "model_hal.mlir"
        hal.write_text("\n".join(lines) + "\n")
        built = iree.compile_model(
            hal,
            work / "model.vmfb",
            [*self.flags, "--compile-from=hal", "--iree-hal-link-executables=false"],
            timeout_s=self.timeout_s,
        )
        hal.unlink(missing_ok=True)
        return dataclasses.replace(built, seconds=seconds + built.seconds, configs_dir=configs_dir)


_TRANSLATE_PASS = "iree-hal-translate-target-executable-variants"


def _workgroup_counts(printed: str) -> dict[str, tuple[int, ...]] | None:
    """Export name -> constant workgroup count, from the translated variant printed after
    `_TRANSLATE_PASS`; None if a count region is not made of constants."""
    counts: dict[str, tuple[int, ...]] = {}
    export, constants = None, {}
    for line in printed.splitlines():
        text = line.strip()
        if text.startswith("hal.executable.export "):
            export, constants = text.split("@", 1)[1].split(" ", 1)[0], {}
        elif export is not None and " = arith.constant " in text and text.endswith(": index"):
            name, value = text.split(" = arith.constant ", 1)
            constants[name.strip()] = int(value.split(":", 1)[0])
        elif export is not None and text.startswith("hal.return "):
            operands = [o.strip() for o in text[len("hal.return ") :].split(":", 1)[0].split(",")]
            if not all(o in constants for o in operands):
                return None
            counts[export] = tuple(constants[o] for o in operands)
            export = None
    return counts


def _with_workgroup_counts(
    lines: list[str], replaced: dict[int, str], counts: dict[str, tuple[int, ...]]
) -> list[str] | None:
    """The hal module's lines with binaries replaced and every dispatch of a re-compiled export
    given its new workgroup count (as constants defined right before the dispatch)."""
    function_ids: dict[str, str] = {}  # SSA value of a looked-up function -> export name
    out: list[str] = []
    patched = set()
    for i, line in enumerate(lines):
        line = replaced.get(i, line)
        text = line.strip()
        if text.startswith(("util.func ", "util.initializer", "func.func ")):
            function_ids = {}  # SSA names are local to a function
        elif "hal.executable.lookup.function " in text and " function(@" in text:
            export = text.split(" function(@", 1)[1].split(")", 1)[0].rsplit("::@", 1)[-1]
            if export in counts:
                function_ids[text.split(" = ", 1)[0].strip()] = export
        elif text.startswith("hal.command_buffer.dispatch<") and "workgroups([" in text:
            ref = text.split(")[", 1)[1].split("]", 1)[0].strip() if ")[" in text else ""
            export = function_ids.get(ref)
            if export is not None:
                indent = line[: len(line) - len(line.lstrip())]
                names = []
                for k, value in enumerate(counts[export]):
                    names.append(f"%schedtune_wg{i}_{k}")
                    out.append(f"{indent}{names[-1]} = arith.constant {value} : index")
                head, rest = line.split("workgroups([", 1)
                line = f"{head}workgroups([{', '.join(names)}]{rest.split(']', 1)[1]}"
                patched.add(export)
        out.append(line)
    if patched != set(counts):
        return None  # a dispatch of a re-compiled export was not found: the splice is not sure
    return out


def _file_name(symbol: str) -> str:
    return symbol.replace("$", "_")
