"""Print collect()'s GPU tags beside nvidia-smi's own answer, fact by fact.

Run on a machine with an NVIDIA GPU (no MLflow needed): ``python3 benchmarks/gpu_compare.py``.
Exits non-zero when a fact differs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import mlflow_sysmetrics


def nvidia_smi_facts() -> dict[str, str]:
    query = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,compute_cap", "--format=csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print("$ nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv")
    print(query.rstrip())
    rows = [[cell.strip() for cell in line.split(",")] for line in query.strip().splitlines()[1:]]
    header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=True).stdout
    fields = "enforced.power.limit,pcie.link.gen.max,pcie.link.width.current"
    links = subprocess.run(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(f"$ nvidia-smi --query-gpu={fields} --format=csv,noheader,nounits")
    print(links.rstrip())
    nvlink = subprocess.run(
        ["nvidia-smi", "nvlink", "-s"], capture_output=True, text=True, check=False
    ).stdout
    print("$ nvidia-smi nvlink -s")
    print(nvlink.rstrip() or "(nothing)")
    active: list[int] = []  # per GPU, in nvidia-smi's order
    for line in nvlink.splitlines():
        if line.startswith("GPU "):
            active.append(0)
        elif re.match(r"\s+Link \d+: ", line) and "inactive" not in line and active:
            active[-1] += 1
    link_rows = [[cell.strip() for cell in line.split(",")] for line in links.strip().splitlines()]
    texts = []
    for i, (_, gen, width) in enumerate(link_rows):
        text = f"PCIe Gen{gen} x{width}"
        if i < len(active) and active[i]:
            text += f", NVLink {active[i]} link{'s' if active[i] != 1 else ''}"
        texts.append(text)
    power = {}
    for row, link_row in zip(rows, link_rows, strict=True):
        power.setdefault(row[0], f"{float(link_row[0]):g}")
    cuda = re.search(r"CUDA[\w ]*?Version\s*:\s*(\d+\.\d+)", header)
    names = list(dict.fromkeys(r[0] for r in rows))
    mib = {r[0]: int(r[1].split()[0]) for r in rows}
    return {
        "sys.gpu": names[0]
        if len(names) == 1
        else ", ".join(f"{sum(r[0] == n for r in rows)}x {n}" for n in names),
        "sys.gpu_count": str(len(rows)),
        "sys.gpu_memory_gb": ", ".join(str(round(mib[n] * 1024**2 / 1e9, 2)) for n in names),
        "sys.gpu_driver": rows[0][2],
        "sys.gpu_compute_capability": ", ".join(dict.fromkeys(r[3] for r in rows)),
        "sys.cuda_driver": cuda.group(1) if cuda else "?",
        "sys.gpu_power_limit_w": ", ".join(power[n] for n in names),
        "sys.gpu_link": texts[0] if len(set(texts)) == 1 else "mixed",
    }


def main() -> int:
    tags = mlflow_sysmetrics.collect()
    print("\ncollect():")
    print(json.dumps(tags, indent=1))
    expected = nvidia_smi_facts()
    print(f"\n{'tag':<28} {'collect()':<28} {'nvidia-smi':<28} verdict")
    failures = 0
    for key, value in expected.items():
        ours = tags.get(key, "<missing>")
        verdict = "MATCH" if ours == value else "MISMATCH"
        failures += verdict != "MATCH"
        print(f"{key:<28} {ours:<28} {value:<28} {verdict}")
    uuid = subprocess.run(
        ["nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    print("\nCUDA_VISIBLE_DEVICES forms (fresh process each):")
    count = expected["sys.gpu_count"]
    for spec, want in (("0", "1"), (uuid, "1"), (uuid[:10], "1"), ("", "0"), (count, "0"), ("-1", "0")):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=spec)
        got = subprocess.run(
            [sys.executable, "-c", "import mlflow_sysmetrics as m; print(m.collect()['sys.gpu_count'])"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.strip()
        verdict = "MATCH" if got == want else "MISMATCH"
        failures += verdict != "MATCH"
        print(f"  CUDA_VISIBLE_DEVICES={spec!r:<48} sys.gpu_count={got} (expected {want}) {verdict}")
    print(f"\n{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
