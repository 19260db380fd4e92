"""The golden catalog (scripts/golden/generate.py, imported unchanged) run by whatever
torch this python has, on its CPU or on CUDA, for measuring how far another torch
build or a GPU is from the spec (scripts/torch-elsewhere/replay.ts). It writes
OUT_DIR/<torch version>/<case id>.json and OUT_DIR/manifest.json, golden/load.ts's
layout, which golden/cuda has (it came from this script's earlier form, which wrote
no manifest and other provenance keys; they were rewritten to this form after the
run). A `cuda` run's files have the corpus schema's form (profile `cuda`, `device`);
a `cuda-capturable` run adds `capturable`, which the schema does not allow: the spec
does not model capturable.

    python3 catalog.py OUT_DIR MODE [ID_PREFIX]
    MODE: cpu (ATEN_CPU_CAPABILITY picks the kernels, as for the corpus),
          cuda (params and grads made on the GPU, everything else as the generator does),
          cuda-capturable (the same with NAdam(capturable=True): the step sizes on the GPU).
A case that raises is listed as skipped with the error, not stopped on.
"""
import hashlib
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import torch  # noqa: E402
import generate as G  # noqa: E402

MODES = ("cpu", "cuda", "cuda-capturable")


def main():
    out_dir, mode = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    if mode not in MODES:
        raise SystemExit("MODE must be one of %s, not %r" % (", ".join(MODES), mode))
    if mode.startswith("cuda"):
        make = G.from_values
        G.from_values = lambda values, dtype: make(values, dtype).to("cuda")
    if mode == "cuda-capturable":
        options = G.torch_options
        G.torch_options = lambda o: {**options(o), "capturable": True}
    capability = G.cpu_capability()
    provenance = {
        "version": torch.__version__,
        "cpu_capability": capability,
        "profile": "cuda" if mode.startswith("cuda") else G.profile_of(capability),
        "python": platform.python_version(),
    }
    if mode.startswith("cuda"):
        provenance["device"] = torch.cuda.get_device_name()
    if mode == "cuda-capturable":
        provenance["capturable"] = True  # not in the corpus schema: the spec does not model capturable
    files, skipped, started = {}, [], time.time()
    for case in G.catalog():
        if not case["id"].startswith(only):
            continue
        reason = G.unsupported_reason(case)
        if reason is None:
            try:
                result = G.run_case(case)
            except Exception as error:  # noqa: BLE001 - recorded, the run goes on
                reason = "%s: %s" % (type(error).__name__, (str(error).splitlines() or [""])[0])
        if reason is not None:
            skipped.append({"id": case["id"], "reason": reason})
            continue
        doc = {
            "format": G.FORMAT, "id": case["id"], "description": case["description"], "tags": case["tags"],
            "torch": provenance, "dtype": case["dtype"], "foreach": case["foreach"], "default_dtype": case["default_dtype"],
            **result,
        }
        text = G.dump(doc)
        file = "/".join([torch.__version__, case["id"]]) + ".json"
        path = os.path.join(out_dir, *file.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        files[file] = hashlib.sha256(text.encode()).hexdigest()
    generator = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "generate.py")
    with open(generator, "rb") as f:
        generator_sha256 = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        "format": "nadam-golden-manifest/1",
        "generator": {"path": "scripts/golden/generate.py", "sha256": generator_sha256},
        "runs": [{"dir": torch.__version__, "torch": provenance, "written": len(files), "skipped": skipped}],
        "files": dict(sorted(files.items())),
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        f.write(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({"torch": provenance, "written": len(files), "skipped": skipped, "seconds": round(time.time() - started, 1)}))


if __name__ == "__main__":
    main()
