#!/usr/bin/env python3
"""Markdown table of bench/results/int8-memory.json (peak RSS of `vitq bench`, fp32 vs W8A8).
usage: memory_table.py FILE.json"""
import json
import sys

print("| arch | fp32 MiB | W8A8 MiB | W8A8 / fp32 | fp32 file MB | W8A8 file MB |")
print("|---|---|---|---|---|---|")
for r in json.load(open(sys.argv[1])):
    print("| {} | {:.0f} | {:.0f} | {:.2f} | {:.1f} | {:.1f} |".format(
        r["arch"], r["fp32_peak_rss_kib"] / 1024, r["int8_peak_rss_kib"] / 1024, r["ratio"],
        r["fp32_file_bytes"] / 1e6, r["int8_file_bytes"] / 1e6))
