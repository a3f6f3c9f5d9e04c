#!/usr/bin/env python3
"""Checks the Grafana dashboards against the metrics the code records.

Fails when a query (a panel's, an annotation's, a variable's label_values)
names a metric no csp service records (a typo or a renamed metric: the panel
would stay empty without anyone noticing), when a metric the code records
has no panel on the overview dashboard (a new metric nobody can see), when a
runbook a dashboard links (`${runbook_base}/<page>.md` or
`docs/runbooks/<page>.md`) is not a file in docs/runbooks/, and when two
dashboards share a uid or two panels of one dashboard an id.

Metric names come from the Rust sources (test modules skipped): every
`const NAME: &str = "csp_..."` in a `metrics.rs` (where the crates keep their
metric names), every such const elsewhere that a `counter!` / `gauge!` /
`histogram!` / `describe_*!` call records, and literal names in those calls. Ticket
enhancement keeps the seed's names without the `csp_` prefix (`queue_depth`,
`enhancement_requests_total`, …): a const of any name in a `metrics.rs` counts
once a metrics macro records it. A name is a histogram when a `histogram!` or
`describe_histogram!` call records it; only histograms may be queried with
the `_bucket`, `_sum` and `_count` suffixes.

Usage: scripts/check_dashboard.py [--emit-rules RULES] [overview.json [other.json ...]]

Without paths: every dashboard in deploy/monitoring/grafana/dashboards, the
csp dashboard (csp.json) as the overview. Every recorded metric needs a
panel on the overview; the other dashboards' queries are checked for names.

With --emit-rules it also writes every query as a recording rule (Grafana's
$__rate_interval and $__range replaced by durations) so that
`promtool check rules RULES` can parse them: the PromQL syntax check this
script does not do itself.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy/monitoring/grafana/dashboards"
DEFAULT_DASHBOARD = DASHBOARDS / "csp.json"
RUNBOOKS = ROOT / "docs/runbooks"
SOURCE_DIRS = ("crates", "services")

# Series Prometheus itself records: for every target, and for alert rules.
PROMETHEUS_SERIES = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE",
}

# A runbook a dashboard links: through its runbook_base variable, or by path.
RUNBOOK_RE = re.compile(r"(?:\$\{runbook_base\}|\$runbook_base|docs/runbooks)/([A-Za-z0-9_.-]+\.md)")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$")

CONST_RE = re.compile(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*"(csp_[a-z0-9_]+)"')
# Any name, for the consts of a metrics.rs (the seed's unprefixed names).
ANY_CONST_RE = re.compile(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*"([a-z][a-z0-9_]*)"')
LITERAL_RE = re.compile(
    r'\b(?:describe_)?(counter|gauge|histogram)!\s*\(\s*"(csp_[a-z0-9_]+)"'
)
MACRO_CALL_RE = re.compile(
    r"\b(?:describe_)?(counter|gauge|histogram)!\s*\(\s*(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Z][A-Z0-9_]*)\b"
)

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}
GROUPING_RE = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
)
IDENT_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)]` modules, which record throwaway names."""
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def recorded_metrics() -> tuple[set[str], set[str]]:
    """(all metric names, histogram names) recorded by the Rust sources."""
    names: set[str] = set()
    histograms: set[str] = set()
    consts: dict[str, set[str]] = {}
    sources: list[str] = []
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.rs")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "target" in parts or "benches" in parts:
                continue
            text = strip_tests(path.read_text(encoding="utf-8"))
            sources.append(text)
            for ident, value in CONST_RE.findall(text):
                consts.setdefault(ident, set()).add(value)
                if path.name == "metrics.rs":
                    names.add(value)
            if path.name == "metrics.rs":
                for ident, value in ANY_CONST_RE.findall(text):
                    consts.setdefault(ident, set()).add(value)
            for kind, value in LITERAL_RE.findall(text):
                names.add(value)
                if kind == "histogram":
                    histograms.add(value)
    # A const is matched by its identifier; two crates giving one identifier
    # different names both count, which can only make the check stricter.
    for text in sources:
        for kind, ident in MACRO_CALL_RE.findall(text):
            values = consts.get(ident, set())
            names.update(values)
            if kind == "histogram":
                histograms.update(values)
    return names, histograms


def query_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords,
    label matchers, grouping labels, ranges and strings left out)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"'(?:\\.|[^'\\])*'", "''", expr)
    expr = re.sub(r"\{[^{}]*\}", "", expr)
    expr = re.sub(r"\[[^\[\]]*\]", "", expr)
    expr = GROUPING_RE.sub("", expr)
    expr = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "", expr)
    # Numbers such as 1e6 or 0x10 are not names.
    expr = re.sub(r"\b\d[\w.]*", "", expr)
    found = set()
    for m in IDENT_RE.finditer(expr):
        name = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function call
        if name.lower() in PROMQL_KEYWORDS:
            continue
        found.add(name)
    return found


def panels(dashboard: dict):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # panels inside collapsed rows


def queries(dashboard: dict):
    """(where, refId, PromQL) of every query: panel targets, annotation
    queries and the metric of query variables' label_values(...)."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            yield f"panel {p.get('title')!r}", f"panel_{p.get('id')}_{t.get('refId')}", t.get("expr", "")
    for i, a in enumerate(dashboard.get("annotations", {}).get("list", [])):
        if a.get("expr"):
            yield f"annotation {a.get('name')!r}", f"annotation_{i}", a["expr"]
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = LABEL_VALUES_RE.match(q)
        if m:
            yield f"variable {v.get('name')!r}", f"variable_{v.get('name')}", m.group(1)


def base_metric(name: str, recorded: set[str], histograms: set[str]) -> str | None:
    if name in recorded or name in PROMETHEUS_SERIES:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return None


def emit_rules(dashboards: list[dict], out: pathlib.Path) -> None:
    """Writes the queries as a Prometheus rule file (JSON is YAML), one
    group per dashboard."""
    groups = []
    for dashboard in dashboards:
        uid = re.sub(r"[^A-Za-z0-9_]", "_", str(dashboard.get("uid", "dashboard")))
        rules = []
        for _, ref, expr in queries(dashboard):
            if expr.strip():
                expr = expr.replace("$__rate_interval", "1m").replace("$__range", "6h")
                rules.append({"record": f"dashboard:{uid}_{ref}", "expr": expr})
        groups.append({"name": f"dashboard_{uid}", "rules": rules})
    out.write_text(json.dumps({"groups": groups}, indent=1))


def structure_errors(path: pathlib.Path, dashboard: dict, text: str) -> list[str]:
    """Runbook links that lead nowhere, panel ids used twice."""
    errors = []
    for page in sorted(set(RUNBOOK_RE.findall(text))):
        if not (RUNBOOKS / page).is_file():
            errors.append(f"{path.name}: links runbook {page}, which is not a file in docs/runbooks/")
    seen: set = set()
    for p in panels(dashboard):
        if p.get("id") in seen:
            errors.append(f"{path.name}: panel id {p.get('id')} is used twice")
        seen.add(p.get("id"))
    return errors


def main() -> int:
    args = sys.argv[1:]
    rules_out = None
    if args[:1] == ["--emit-rules"] and len(args) >= 2:
        rules_out = pathlib.Path(args[1])
        args = args[2:]
    if args:
        paths = [pathlib.Path(a) for a in args]
    else:
        paths = [DEFAULT_DASHBOARD] + sorted(
            p for p in DASHBOARDS.glob("*.json") if p != DEFAULT_DASHBOARD
        )
    texts = [path.read_text(encoding="utf-8") for path in paths]
    dashboards = [json.loads(text) for text in texts]
    if rules_out is not None:
        emit_rules(dashboards, rules_out)
    recorded, histograms = recorded_metrics()
    if not recorded:
        print(f"no csp_ metric found in {', '.join(SOURCE_DIRS)}: wrong checkout?")
        return 1

    errors = []
    uids: dict = {}
    for index, (path, dashboard, text) in enumerate(zip(paths, dashboards, texts)):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        uid = dashboard.get("uid")
        if uid in uids:
            errors.append(f"{path.name}: uid {uid!r} is also the uid of {uids[uid]}")
        uids[uid] = path.name
        errors += structure_errors(path, dashboard, text)
        covered: set[str] = set()
        count = 0
        for where, _, expr in queries(dashboard):
            if not expr.strip():
                continue
            count += 1
            names = query_metrics(expr)
            if not names:
                errors.append(f"{path.name}: {where}: query names no metric: {expr}")
            for name in sorted(names):
                base = base_metric(name, recorded, histograms)
                if base is None:
                    errors.append(
                        f"{path.name}: {where}: {name} is not recorded by any csp service: {expr}"
                    )
                else:
                    covered.add(base)
        if index == 0:
            for name in sorted(recorded - covered):
                kind = "histogram" if name in histograms else "metric"
                errors.append(
                    f"{kind} {name} is recorded by the code but has no panel on {path.name}"
                )
            print(
                f"{shown}: {count} queries, {len(recorded)} csp metrics recorded "
                f"({len(histograms)} histograms), {len(covered & recorded)} on the dashboard"
            )
        else:
            print(f"{shown}: {count} queries checked")

    for e in errors:
        print(f"error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
