"""A/A canary: version 2 and a byte-identical copy published as 3; rollouts at the shipped policy, both orders.

Run from the repository root: ``python bench/results/canary-aa-cpu-2core-epyc/aa.py [REQUESTS_PER_STEP]``.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeasr.export.repository import ModelRepository
from edgeasr.serving.live import LiveState, live_file_for, write_live
from edgeasr.serving.server import TritonServer

work = Path(tempfile.mkdtemp(prefix="edgeasr-aa-"))
repo_dir = work / "repo"
shutil.copytree("triton_models", repo_dir)
shutil.rmtree(repo_dir / "edgeasr" / "1")
v2 = repo_dir / "edgeasr" / "2"
version = ModelRepository(repo_dir).publish(
    "edgeasr",
    v2 / "model.onnx",
    card_fields={"source_checkpoint": "A/A copy of version 2"},
    decoder_files={"lm.arpa": v2 / "lm.arpa", "decoder.json": v2 / "decoder.json"},
)
print("published", version)
results = {}
with TritonServer(repo_dir) as server:
    for champion, challenger in (("2", "3"), ("3", "2")):
        write_live(live_file_for(repo_dir, "edgeasr"), LiveState(model="edgeasr", champion=champion))
        out = work / f"aa-{champion}-{challenger}"
        started = time.time()
        command = [sys.executable, "-m", "edgeasr", "canary", "rollout", "--policy", "export/canary.toml",
                   "--url", server.grpc_url, "--repository", str(repo_dir), "--champion", champion,
                   "--challenger", challenger, "--manifest", "work/corpus/test.jsonl",
                   "--requests-per-step", sys.argv[1] if len(sys.argv) > 1 else "100", "--out", str(out)]  # fmt: skip
        code = subprocess.run(command, capture_output=True, text=True).returncode
        report = json.loads((out / "report.json").read_text())
        results[f"{champion}->{challenger}"] = {
            "exit": code,
            "final": report["final"],
            "seconds": round(time.time() - started),
            "p50_delta_ms": [
                round(1000 * d["analysis"]["metrics"]["p50_latency_delta_s"]["value"], 1) for d in report["decisions"]
            ],
        }
        print(results)
(work / "aa.json").write_text(json.dumps(results, indent=2) + "\n")
