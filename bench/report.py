"""Tables of the figures in bench/results/*.json: ``python -m bench.report [--out PATH]``.

Tables only, each with the command and the time that produced its figures; what they mean, and
what was done about them, is told in bench/RESULTS.md (written by hand). Default output:
bench/results/report.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

OUT = RESULTS / "report.md"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "met" if value else "**missed**"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def provenance(docs: list[dict[str, Any]]) -> list[str]:
    rows = [[d["benchmark"], d["scale"], f"`{d['command']}`", d["at"], d["git"],
             " / ".join(f"{x:.2f}" for x in d["figures"].get("load_avg_at_start", []))] for d in docs]
    return ["## Runs", "", *table(["benchmark", "scale", "command", "at (UTC)", "tree", "load 1/5/15 min at start"],
                                   rows)]


def machine(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    s = m.get("postgresql_settings", {})
    rows = [["CPU", f"{m['cpu']}, {m['cores']} cores"], ["memory", f"{m['memory_gib']} GiB"],
            ["Python / kernel", f"{m['python']} / {m['kernel']}"],
            ["PostgreSQL", f"{m['postgresql']} ({m['postgresql_where']})"],
            ["PostgreSQL settings", ", ".join(f"{k} {v}" for k, v in sorted(s.items()))]]
    return ["## Machine", "", *table(["", ""], rows)]


def extract(docs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for d in docs:
        f, s = d["figures"], d["figures"]["summary"]
        rows.append([d["scale"], n(f["errors"]), n(f["digests"]), n(s["extract"]["median_s"], 2),
                     n(s["transform"]["median_s"], 2), f"**{n(s['both']['median_s'], 2)}**",
                     f"{n(s['both']['best_s'], 2)}–{n(s['both']['worst_s'], 2)}", n(s["both"]["peak_rss_mib_max"], 0),
                     n(f["targets"]["wall_s"], 0), n(f["targets"]["wall_met"] and f["targets"]["rss_met"])])
    return ["## Extract + transform (fresh processes, medians)", "",
            *table(["scale", "errors", "digests", "extract s", "transform s", "both s", "range s", "peak RSS MiB",
                    "target s", "target"], rows)]


def render(docs: list[dict[str, Any]]) -> list[str]:
    rows = [[d["scale"], n(d["figures"]["digests"]), f"**{n(d['figures']['realistic_mix']['msgs_per_s_median'])}**",
             f"{n(d['figures']['realistic_mix']['msgs_per_s_worst'])}–{n(d['figures']['realistic_mix']['msgs_per_s_best'])}",
             n(d["figures"]["realistic_mix"]["avg_message_bytes"]), n(d["figures"]["worst_case"]["msgs_per_s_median"]),
             n(d["figures"]["target_msgs_per_s"]), n(d["figures"]["target_met"])] for d in docs]
    return ["## Render (one core, MIME included)", "",
            *table(["scale", "digests", "realistic mix /s (median)", "range /s", "bytes/message", "worst case /s",
                    "target /s", "target"], rows)]


def send(docs: list[dict[str, Any]]) -> list[str]:
    rows = [[d["scale"], n(d["figures"]["messages"]), n(d["figures"]["batches"]),
             n(d["figures"]["raw_msgs_per_s_median"]), n(d["figures"]["pipeline_msgs_per_s_median"]),
             f"**{n(d['figures']['ratio_of_medians'], 3)}**",
             ", ".join(n(r.get("ratio"), 2) for r in d["figures"].get("rounds", [])),
             d["figures"].get("synchronous_commit", "—"), n(d["figures"]["target_ratio"], 2),
             n(d["figures"]["target_met"])] for d in docs]
    return ["## Send (one SMTP connection per batch, ledger marks included)", "",
            *table(["scale", "messages", "batches", "raw smtplib /s", "pipeline /s", "ratio of medians",
                    "ratio per round", "synchronous_commit", "target", "target"], rows)]


def fanout(doc: dict[str, Any]) -> list[str]:
    rows = []
    for scale, s in doc["figures"]["scales"].items():
        x = s["xcom"]["bytes"]
        rows.append([scale, n(s["digests"]), n(s["entities"]), f"{s['batches']} (≤ {s['max_batches']})",
                     f"{n(s['digests_per_batch']['min'])}–{n(s['digests_per_batch']['max'])}",
                     f"{n(x['extract_errors'])} / {n(x['build_digests'])} / {n(x['plan_batches'])}",
                     "yes" if s["xcom"]["contains_message_body"] or s["xcom"]["contains_dataframe"] else "no"])
    return [f"## Fan-out ({doc['scale']})", "",
            *table(["scale", "digests", "companies", "deliver instances", "digests per batch",
                    "XCom bytes extract / build / plan", "bodies or DataFrames in XCom"], rows)]


def airflow(docs: list[dict[str, Any]]) -> list[str]:
    lines = ["## The whole day under `airflow standalone` (LocalExecutor)", ""]
    rows = []
    for d in docs:
        w = d["figures"].get("whole_day")
        if w:
            deliver = w["tasks"].get("deliver", {})
            rows.append([d["scale"], n(w["emails_received"]), n(w.get("ledger_sent")), deliver.get("instances", "—"),
                         n(w["trigger_to_first_email_s"], 1), f"**{n(w['trigger_to_last_email_s'], 1)}**",
                         n(w["trigger_to_run_finished_s"], 1), w["state"]])
    lines += table(["scale", "e-mails received", "ledger sent", "deliver instances", "first e-mail s",
                    "last e-mail s", "run finished s", "run"], rows)
    for d in docs:
        w = d["figures"].get("whole_day")
        if w:
            trows = [[t, v["instances"], n(v["first_start_s"], 1), n(v["last_end_s"], 1),
                      n(v["mean_duration_s"], 2), n(v.get("sum_duration_s"), 1)] for t, v in w["tasks"].items()]
            lines += [f"Tasks of the {d['scale']} run (seconds from the trigger):", "",
                      *table(["task", "instances", "first start", "last end", "mean duration", "sum"], trows)]
        s = d["figures"].get("side_by_side")
        if s:
            lines += [f"Side by side ({d['scale']}, {n(s['digests'])} digests): ours "
                      f"{s['ours']['trigger_to_last_email_s']} s, naive {s['naive']['trigger_to_last_email_s']} s, "
                      f"ratio {s['ratio_naive_over_ours']}×.", ""]
    return lines


def growth(doc: dict[str, Any]) -> list[str]:
    f = doc["figures"]
    rows = [[scale, n(v["history"].get("invoices")), n(v["history"].get("step_attempts")),
             n(v["day"].get("day_invoices")), n(v["errors"]), n(v["digests"]), n(v["extract_transform_s"], 2),
             n(v["peak_rss_mib"]), n(v["render_msgs_per_s"])]
            for scale, v in f.items() if isinstance(v, dict) and "errors" in v]
    return ["## Growth", "", *table(["scale", "invoices", "attempts kept", "invoices of the day", "errors",
                                     "digests", "extract + transform s", "peak RSS MiB", "render /s"], rows)]


def build() -> str:
    names = sorted(p.stem for p in RESULTS.glob("*.json"))
    docs = {name: load(name) for name in names}
    docs = {k: v for k, v in docs.items() if v}
    by = {kind: [d for k, d in docs.items() if d["benchmark"] == kind] for kind in
          ("extract", "render", "send", "fanout", "airflow", "growth")}
    lines = ["# Benchmark tables", "", "Made by `python -m bench.report` from bench/results/*.json; read them "
             "with bench/RESULTS.md.", ""]
    if docs:
        lines += provenance(list(docs.values())) + machine(next(iter(docs.values())))
    for kind, section in (("extract", extract), ("render", render), ("send", send), ("airflow", airflow)):
        if by[kind]:
            lines += section(by[kind])
    for doc in by["fanout"]:
        lines += fanout(doc)
    for doc in by["growth"]:
        lines += growth(doc)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.write_text(build() + "\n", encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
