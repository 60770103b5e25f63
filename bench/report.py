"""Turns raw runs into rows (ours, mosquitto, ratio, floor) and the Markdown table."""
import statistics


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def row(scenario, title, metric, ours, peer):
    """One table row; `ok` is None where the metric has no floor or a figure is missing."""
    ratio = ours / peer if ours is not None and peer else None
    ok = None
    floor = ""
    if metric.min_ratio is not None:
        floor = f">= {metric.min_ratio}x mosquitto"
        ok = None if ratio is None else ratio >= metric.min_ratio
    elif metric.max_value is not None:
        floor = f"<= {metric.max_value:g} {metric.unit}"
        ok = None if ours is None else ours <= metric.max_value
    return {"scenario": scenario, "title": title, "metric": metric.key, "label": metric.label,
            "unit": metric.unit, "higher_is_better": metric.higher_is_better,
            "appliance": ours, "mosquitto": peer, "ratio": ratio, "floor": floor, "ok": ok}


def check_row(scenario, title, label, ok, detail):
    """A pass/fail row with no figure to compare (nothing lost, all connections held)."""
    return {"scenario": scenario, "title": title, "metric": "check", "label": label, "unit": "",
            "appliance": detail, "mosquitto": None, "ratio": None, "floor": label, "ok": ok}


def _fmt(v, unit):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if unit == "s":
        return f"{v:.2f}"
    if unit == "KB" and abs(v) < 100:
        return f"{v:.2f}"
    return f"{v:,.0f}"


def markdown(rows, env):
    out = [
        f"# Benchmark {env['date']}",
        "",
        f"Machine: {env['cpu_model']}, {env['cores']} cores, {env['mem_gib']} GiB, {env['kernel']}. "
        f"Pinning: broker on core {env['broker_cpu']}, load generator on core {env['loadgen_cpu']}. "
        f"mosquitto: {env['mosquitto']}; appliance on Python {env['python']}. "
        f"Load average before/after: {env['loadavg_before']} / {env['loadavg_after']}. "
        f"Repeats per scenario: {env['repeat']} (medians).",
        "",
        "| scenario | figure | appliance | mosquitto | ratio | floor | | other load |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        verdict = {True: "ok", False: "**FAIL**", None: ""}[r["ok"]]
        unit = f" ({r['unit']})" if r["unit"] else ""
        other = r.get("other_cpu")
        other = f"{other:.2f}" if other is not None else ""
        out.append(f"| {r['title']} | {r['label']}{unit} | {_fmt(r['appliance'], r['unit'])} | "
                   f"{_fmt(r['mosquitto'], r['unit'])} | {ratio} | {r['floor']} | {verdict} | {other} |")
    out += ["", "Ratios are appliance / mosquitto from the same run (for latency and memory, lower is better). "
            "\"other load\" is the most CPU (in cores) that neither the broker nor the load generator used "
            "during that scenario's runs: loopback softirq work (0.05-0.3) plus anything else running on the "
            "machine. Above about 0.5 the broker did not have its core to itself: trust the ratios and "
            "\"msgs per broker CPU-second\", not the absolute rates, and not latency p99. Per-run figures "
            "(loadgen CPU, drops, RSS peaks) are in results.json; a run whose load generator used more than "
            "90 % of its core measured the load generator, not the broker."]
    return "\n".join(out) + "\n"
