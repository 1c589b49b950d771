"""Print every benchmark group as ratios to fastfeed, since claims are ratios from one run."""


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups = {}
    for bench in session.benchmarks:
        groups.setdefault(bench.group, {})[bench.name] = bench
    lines = []
    for group, benches in groups.items():
        ours = [b for name, b in benches.items() if "fastfeed" in name]
        if not ours:
            continue
        base = ours[0].stats.min
        size = ours[0].extra_info.get("bytes")
        parts = []
        for name, b in sorted(benches.items(), key=lambda kv: kv[1].stats.min):
            label = name.split("-")[-1].rstrip("]")
            parts.append(f"{label} {b.stats.min * 1e9:,.0f} ns ({b.stats.min / base:.1f}x)")
        rate = f", {size / (base * 1e9):.2f} GB/s" if size else ""
        lines.append(f"{group}: " + "; ".join(parts) + rate)
    for bench in session.benchmarks:
        if "ns_per_update" in bench.extra_info:
            lines.append(f"{bench.name}: {bench.extra_info['ns_per_update']:.0f} ns per update")
        if "p50_us" in bench.extra_info:
            lines.append(f"{bench.name}: p50 {bench.extra_info['p50_us']:.1f} us, "
                         f"p99 {bench.extra_info['p99_us']:.1f} us")
        if "blocks_per_frame" in bench.extra_info:
            lines.append(f"{bench.name}: {bench.extra_info['transient_bytes']} transient bytes, "
                         f"{bench.extra_info['blocks_per_frame']:.5f} net blocks/frame")
    terminalreporter.write_sep("=", "fastfeed ratios (time relative to fastfeed, one run)")
    for line in lines:
        terminalreporter.write_line(line)
