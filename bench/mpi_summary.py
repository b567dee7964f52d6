#!/usr/bin/env python3
"""Summarizes bench/results/mpi.jsonl (written by bench/mpi.sh) as markdown: processes against
threads, the collective's cost, and the projections of docs/SCALING.md.

usage: bench/mpi_summary.py bench/results/mpi.jsonl

The projections use only the measured rows plus the network assumptions named below (this
machine has no network to measure): each node is a machine like this one (2 cores) running 2
processes of 1 thread.
"""
import json
import math
import statistics
import sys

# Assumptions (not measured here): a collective across nodes costs LATENCY_S per step of a
# log2(P)-step algorithm, and moves bytes at NET_BYTES_PER_S (10 Gb/s Ethernet).
LATENCY_S = 50e-6
NET_BYTES_PER_S = 1.25e9

rows = [json.loads(line) for line in open(sys.argv[1])]
gather = [r for r in rows if r["kind"] == "gather"]
jobs = [r for r in rows if r["kind"] != "gather"]


def med(label, config):
    v = [r["seconds"] for r in jobs if r["label"] == label and r["config"] == config]
    return statistics.median(v) if v else float("nan")


def first(label, config):
    return next(r for r in jobs if r["label"] == label and r["config"] == config)


print("## Processes against threads (medians)\n")
print("Eval rows time the evaluation loop (decoding included, model loading not); quantize rows "
      "the whole job (loading, capture, search).\n")
print("| job | 1 process x 2 threads (s) | 2 processes x 1 thread (s) | 2x1 / 1x2 time | "
      "s per image, best | collectives | bytes received by rank 0 |")
print("|---|---|---|---|---|---|---|")
labels = list(dict.fromkeys(r["label"] for r in jobs))
for label in labels:
    ta, tb = med(label, "1x2"), med(label, "2x1")
    b = first(label, "2x1")
    n = b["images"]
    print(f"| {label} | {ta:.2f} | {tb:.2f} | {tb / ta:.2f} | {min(ta, tb) / n:.4f} | "
          f"{b['collectives']} | {b['bytes_received']:,} |")

print("\n## The collective (dist::AllGather, 2 processes on this machine)\n")
print("| bytes per process | bytes received | microseconds per call |")
print("|---|---|---|")
for g in gather:
    print(f"| {g['bytes_per_rank']:,} | {g['bytes_received']:,} | {g['us_per_call']:.1f} |")


def collective_seconds(count, total_bytes, processes):
    steps = max(1, math.ceil(math.log2(processes)))
    return count * steps * LATENCY_S + total_bytes / NET_BYTES_PER_S


print("\n## Projections\n")
print(f"Nodes like this machine, 2 processes x 1 thread each; network assumed: {LATENCY_S * 1e6:.0f} "
      f"µs per collective step (log2 P steps), {NET_BYTES_PER_S / 1e9:.2f} GB/s.\n")
base = "DeiT-Base int8 (minmax W8A8), 64 images"
base_fp = "DeiT-Base fp32 (random weights), 64 images"
print("| job | nodes | processes | compute (s) | communication (s) | total |")
print("|---|---|---|---|---|---|")
for label, name in ((base, "DeiT-Base W8A8 eval, 50,000 images"),
                    (base_fp, "DeiT-Base fp32 eval, 50,000 images")):
    b = first(label, "2x1")
    per_image = min(med(label, "1x2"), med(label, "2x1")) / b["images"]
    record = b["bytes_received"] / b["images"]  # bytes gathered per evaluated image (upper bound)
    for nodes in (1, 8, 64):
        p = 2 * nodes
        compute = 50000 * per_image / nodes
        comm = collective_seconds(b["collectives"], 50000 * record, p)
        total = compute + comm
        print(f"| {name} | {nodes} | {p} | {compute:.0f} | {comm:.3f} | {total / 60:.1f} min |")
# liu2021: T(n) = fixed + per_image * n from the 8- and 32-image runs (1 process, 2 threads).
q8 = "DeiT-Tiny liu2021 W8A8 coarse-to-fine, 8 images"
q32 = "DeiT-Tiny liu2021 W8A8 coarse-to-fine, 32 images"
t8, t32 = med(q8, "1x2"), med(q32, "1x2")
per_image = (t32 - t8) / 24
fixed = t8 - 8 * per_image
c32 = first(q32, "2x1")
c8 = first(q8, "2x1")
# Collectives do not depend on the image count (the search's steps); bytes grow with it.
bytes_per_image = (c32["bytes_received"] - c8["bytes_received"]) / 24
for n_cal in (100, 1024):
    for nodes in (1, 8, 64):
        # Every process needs a calibration image: 1 process x 2 threads per node when 2 per
        # node would be more processes than images (the per-image cost is the 1x2 one anyway).
        p = 2 * nodes if 2 * nodes <= n_cal else nodes
        per_node = math.ceil(n_cal / nodes)
        compute = fixed + per_image * per_node
        comm = collective_seconds(c32["collectives"], n_cal * bytes_per_image, p)
        print(f"| DeiT-Tiny liu2021 W8A8 calibration, {n_cal} images | {nodes} | {p} | {compute:.0f} | "
              f"{comm:.2f} | {(compute + comm) / 60:.1f} min |")
print(f"\nliu2021 fit from the 1-process runs: {fixed:.1f} s that every process repeats (the "
      f"weights' quantization and packing per candidate, the float outputs' setup, model "
      f"loading) + {per_image:.2f} s per calibration image; {c32['collectives']} collectives per "
      f"job, {bytes_per_image:,.0f} bytes gathered per calibration image.")
