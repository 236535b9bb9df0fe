#!/usr/bin/env python3
"""Offline checks of the deployment files in deploy/ (run by deploy/validate, which CI runs).

What the schema validators cannot see:
- every YAML and JSON file parses, and the TOML embedded in the Kubernetes ConfigMaps parses;
- Kubernetes: every workload has liveness and readiness probes on /livez and /readyz, a
  restricted security context (non-root, read-only root filesystem, all capabilities dropped,
  no privilege escalation, seccomp RuntimeDefault), resource requests and a memory limit; the
  log's StatefulSet has exactly one replica; every StatefulSet has a PodDisruptionBudget and a
  NetworkPolicy selecting its pods;
- the Dockerfile: stages defined before use, pinned base images, a distroless non-root default
  stage, a .dockerignore keeping target/ out of the build context;
- compose: our services are read-only, drop every capability and bind ports to 127.0.0.1; every
  named volume is declared and every bind-mounted file exists; the server has a 2-of-3 policy
  (checked on the configs init.sh writes, see --compose-configs);
- Grafana: panel ids are unique, every query uses the datasource variable; every PromQL query of
  the dashboard is written to a rules file for `promtool check rules` (--write-dashboard-rules);
- metric names used by the alerts and the dashboard are defined in the Rust sources (server
  metrics are `sealtrail_` + name, witness metrics `sealtrail_witness_` + name), except the
  names in PENDING_METRICS, which other branches add: those only warn.

Exit status 0 when every check passes, 1 otherwise; each failure is printed on its own line.
"""

import argparse
import json
import pathlib
import re
import sys
import tomllib

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
ROOT = DEPLOY.parent

# Metric names the deployment files use before the code that defines them is merged. Remove a
# name once it is defined (the check says so). Each entry: name -> where it comes from.
PENDING_METRICS = {
    "sealtrail_witness_http_requests_total": "witness branch",
}

# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "increase", "irate", "time", "absent",
    "histogram_quantile", "predict_linear", "max_over_time", "min_over_time", "changes",
    "label_values", "bool", "offset", "le", "up", "humanize", "humanizePercentage",
    "humanizeDuration", "value", "labels",
}


class Checker:
    def __init__(self):
        self.failures = []
        self.warnings = []

    def fail(self, where, msg):
        self.failures.append(f"{where}: {msg}")

    def warn(self, where, msg):
        self.warnings.append(f"{where}: {msg}")

    def expect(self, cond, where, msg):
        if not cond:
            self.fail(where, msg)
        return cond


def rel(path):
    return str(pathlib.Path(path).resolve().relative_to(ROOT))


def load_yaml_docs(c, path):
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        c.fail(rel(path), f"not valid YAML: {e}")
        return []


def parse_all(c):
    """Every YAML and JSON file under deploy/ parses."""
    docs = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.suffix in (".yml", ".yaml"):
            docs[path] = load_yaml_docs(c, path)
        elif path.suffix == ".json":
            try:
                docs[path] = [json.loads(path.read_text(encoding="utf-8"))]
            except json.JSONDecodeError as e:
                c.fail(rel(path), f"not valid JSON: {e}")
    return docs


# --- Kubernetes -------------------------------------------------------------------------------


def get(obj, *keys):
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def check_container_security(c, where, sc, pod_sc):
    def val(key):
        v = get(sc, key)
        return get(pod_sc, key) if v is None else v

    c.expect(val("runAsNonRoot") is True, where, "runAsNonRoot must be true")
    c.expect(get(sc, "allowPrivilegeEscalation") is False, where,
             "allowPrivilegeEscalation must be false")
    c.expect(get(sc, "readOnlyRootFilesystem") is True, where,
             "readOnlyRootFilesystem must be true")
    c.expect(get(sc, "capabilities", "drop") == ["ALL"], where, "capabilities.drop must be [ALL]")
    c.expect(not get(sc, "capabilities", "add"), where, "no capability may be added")
    c.expect(get(sc, "privileged") in (None, False), where, "must not be privileged")
    seccomp = get(sc, "seccompProfile", "type") or get(pod_sc, "seccompProfile", "type")
    c.expect(seccomp == "RuntimeDefault", where, "seccompProfile.type must be RuntimeDefault")


def check_resources(c, where, res):
    c.expect(get(res, "requests", "cpu") is not None, where, "resources.requests.cpu is missing")
    c.expect(get(res, "requests", "memory") is not None, where,
             "resources.requests.memory is missing")
    c.expect(get(res, "limits", "memory") is not None, where, "resources.limits.memory is missing")


def check_probe(c, where, probe, path):
    c.expect(probe is not None, where, f"probe on {path} is missing")
    if probe is not None:
        c.expect(get(probe, "httpGet", "path") == path, where, f"probe must GET {path}")


def check_statefulset(c, where, sts, policies):
    spec = sts.get("spec", {})
    name = get(sts, "metadata", "name")
    labels = get(spec, "selector", "matchLabels") or {}
    c.expect(spec.get("replicas") == 1, where,
             "replicas must be 1 (one writer per log, one pod per witness identity)")
    c.expect(bool(spec.get("volumeClaimTemplates")), where, "needs a volumeClaimTemplate (PVC)")
    pod = get(spec, "template", "spec") or {}
    pod_sc = pod.get("securityContext") or {}
    c.expect(pod_sc.get("runAsNonRoot") is True, where, "pod runAsNonRoot must be true")
    c.expect(get(pod_sc, "seccompProfile", "type") == "RuntimeDefault", where,
             "pod seccompProfile must be RuntimeDefault")
    c.expect(pod.get("automountServiceAccountToken") is False, where,
             "automountServiceAccountToken must be false (the services need no API access)")
    containers = pod.get("containers") or []
    c.expect(bool(containers), where, "no containers")
    for ctr in containers:
        cw = f"{where} container {ctr.get('name')}"
        check_probe(c, cw, ctr.get("livenessProbe"), "/livez")
        check_probe(c, cw, ctr.get("readinessProbe"), "/readyz")
        check_resources(c, cw, ctr.get("resources"))
        check_container_security(c, cw, ctr.get("securityContext") or {}, pod_sc)
    for ctr in pod.get("initContainers") or []:
        cw = f"{where} initContainer {ctr.get('name')}"
        check_resources(c, cw, ctr.get("resources"))
        check_container_security(c, cw, ctr.get("securityContext") or {}, pod_sc)
    uses_secret = any(get(v, "secret", "secretName") for v in pod.get("volumes") or [])
    c.expect(uses_secret, where, "the signing key must come from a Secret volume")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        selecting = [
            p for p in policies.get(kind, [])
            if labels and (get(p, "spec", "selector", "matchLabels")
                           or get(p, "spec", "podSelector", "matchLabels")) == labels
        ]
        c.expect(bool(selecting), where, f"no {kind} selects the pods of {name}")


def check_kubernetes(c, docs):
    objects = []
    for path, ds in docs.items():
        if path.parent.name == "kubernetes":
            objects += [(path, d) for d in ds]
    c.expect(bool(objects), "deploy/kubernetes", "no manifests found")
    by_kind = {}
    for _, obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
    for path, obj in objects:
        where = f"{rel(path)} {obj.get('kind')}/{get(obj, 'metadata', 'name')}"
        c.expect(obj.get("kind") != "Deployment", where,
                 "use a StatefulSet: a Deployment may run two pods of one log at once")
        if obj.get("kind") == "StatefulSet":
            check_statefulset(c, where, obj, by_kind)
        if obj.get("kind") == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if key.endswith(".toml"):
                    try:
                        tomllib.loads(text)
                    except tomllib.TOMLDecodeError as e:
                        c.fail(f"{where} {key}", f"not valid TOML: {e}")
    names = {get(o, "metadata", "name") for o in by_kind.get("StatefulSet", [])}
    c.expect({"sealtrail", "sealtrail-witness"} <= names, "deploy/kubernetes",
             "expected the StatefulSets sealtrail and sealtrail-witness")


# --- container build --------------------------------------------------------------------------


def dockerfile_instructions(text):
    """(instruction, arguments) pairs, with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not cur:
            continue
        cur += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            if cur.strip():
                word, _, rest = cur.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def check_dockerfile(c):
    """No container engine here, so the build is read, not run: stages are defined before use,
    images are pinned (no implicit latest), and the default (last) stage runs as non-root."""
    path = DEPLOY / "container" / "Dockerfile"
    where = rel(path)
    stages, last_user, last_from = [], None, None
    for word, args in dockerfile_instructions(path.read_text(encoding="utf-8")):
        if word == "FROM":
            parts = args.split()
            image = parts[0]
            c.expect(":" in image.split("/")[-1] and not image.endswith(":latest"), where,
                     f"base image {image} must have a pinned tag")
            stages.append(parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None)
            last_user, last_from = None, image
        elif word == "USER":
            last_user = args
        elif word == "ADD":
            c.expect("://" not in args, where, "ADD of a URL: download in a stage and verify")
        for ref in re.findall(r"--from=(\S+)", args):
            c.expect(ref in stages[:-1], where, f"--from={ref} is not an earlier stage")
    c.expect(stages and stages[-1] == "runtime", where, "the last (default) stage must be runtime")
    c.expect(last_from is not None and "distroless" in last_from, where,
             "the runtime stage must be distroless (no shell, no package manager)")
    uid = (last_user or "0").split(":")[0]
    c.expect(uid not in ("0", "root"), where, "the runtime stage must end with a non-root USER")
    ignore = DEPLOY / "container" / "Dockerfile.dockerignore"
    c.expect(ignore.exists() and "**/target" in ignore.read_text(encoding="utf-8"), rel(ignore),
             "must exist and exclude **/target from the build context")


# --- compose ----------------------------------------------------------------------------------


def check_compose(c, docs):
    path = DEPLOY / "compose" / "compose.yaml"
    if not c.expect(path in docs and docs[path], rel(path), "missing"):
        return
    compose = docs[path][0]
    services = compose.get("services") or {}
    declared = set((compose.get("volumes") or {}).keys())
    for want in ("init", "sealtrail", "witness1", "witness2", "witness3", "prometheus", "grafana"):
        c.expect(want in services, rel(path), f"service {want} is missing")
    for name, svc in services.items():
        where = f"{rel(path)} service {name}"
        ours = str(svc.get("image", "")).startswith("sealtrail")
        if ours:
            c.expect(svc.get("read_only") is True, where, "read_only must be true")
            c.expect(svc.get("cap_drop") == ["ALL"], where, "cap_drop must be [ALL]")
            c.expect("no-new-privileges:true" in (svc.get("security_opt") or []), where,
                     "security_opt must hold no-new-privileges:true")
        for port in svc.get("ports") or []:
            c.expect(str(port).startswith("127.0.0.1:"), where,
                     f"port {port} must be published on 127.0.0.1 only")
        for vol in svc.get("volumes") or []:
            src = str(vol).split(":")[0]
            if src.startswith((".", "/")):
                c.expect((path.parent / src).exists(), where, f"bind mount {src} does not exist")
            else:
                c.expect(src in declared, where, f"volume {src} is not declared")
    for name in ("sealtrail", "witness1", "witness2", "witness3"):
        dep = get(services, name, "depends_on", "init", "condition")
        c.expect(dep == "service_completed_successfully", f"{rel(path)} service {name}",
                 "must wait for init to complete")


def check_compose_configs(c, config_dir):
    """The configs init.sh wrote: a 2-of-3 log, each witness knowing the log and two peers."""
    d = pathlib.Path(config_dir)
    try:
        log = tomllib.loads((d / "sealtrail.toml").read_text())
        witnesses = [tomllib.loads((d / f"witness{i}.toml").read_text()) for i in (1, 2, 3)]
    except (OSError, tomllib.TOMLDecodeError) as e:
        c.fail("init.sh output", str(e))
        return
    w = log.get("witnessing", {})
    c.expect(w.get("quorum") == 2, "init.sh sealtrail.toml", "quorum must be 2")
    urls = [x.get("url") for x in w.get("witnesses", [])]
    c.expect(urls == [f"http://witness{i}:8081" for i in (1, 2, 3)], "init.sh sealtrail.toml",
             f"witness URLs {urls}")
    vkeys = [x.get("vkey") for x in w.get("witnesses", [])]
    if not c.expect(len(set(vkeys)) == 3 and all(vkeys), "init.sh sealtrail.toml",
                    "three distinct witness keys expected"):
        return
    names = [x.get("name") for x in witnesses]
    for i, wc in enumerate(witnesses, start=1):
        where = f"init.sh witness{i}.toml"
        c.expect(vkeys[i - 1].startswith(f"{wc.get('name')}+"), where,
                 "the log must list this witness's own key")
        logs = wc.get("logs", [])
        c.expect(len(logs) == 1 and logs[0].get("origin") == log.get("origin"), where,
                 "must cosign exactly the log's origin")
        peers = wc.get("peers", [])
        want = {vkeys[j - 1] for j in (1, 2, 3) if j != i}
        c.expect({p.get("vkey") for p in peers} == want, where, "peers must be the two others")
        c.expect(wc.get("data_dir") == "/var/lib/sealtrail-witness", where, "data_dir")
    c.expect(len(set(names)) == 3, "init.sh", "witness names must differ")


# --- Grafana and metric names -----------------------------------------------------------------


def dashboard_exprs(c, dash, where):
    exprs = []
    ids = set()
    for panel in dash.get("panels", []):
        pid = panel.get("id")
        c.expect(pid not in ids, where, f"panel id {pid} is used twice")
        ids.add(pid)
        if panel.get("type") == "row":
            continue
        c.expect(get(panel, "datasource", "uid") == "${datasource}", where,
                 f"panel {panel.get('title')!r} must use the datasource variable")
        targets = panel.get("targets") or []
        c.expect(bool(targets), where, f"panel {panel.get('title')!r} has no query")
        for t in targets:
            exprs.append(t.get("expr", ""))
    return exprs


def grafana_to_promql(expr):
    """Substitutes Grafana's variables so promtool can parse the query."""
    return (expr.replace("$__rate_interval", "5m").replace("$log", ".*")
            .replace("$witness", ".*"))


def metric_names(expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {n for n in names if n.startswith("sealtrail_") and n not in PROMQL_WORDS}


def defined_metrics():
    """Metric names defined in the Rust sources: every string literal of the service crates,
    with the crate's registry prefix."""
    out = set()
    for crate, prefix in (("server", "sealtrail_"), ("witness", "sealtrail_witness_")):
        for path in (ROOT / crate / "src").rglob("*.rs"):
            for lit in re.findall(r'"([a-z][a-z0-9_]*)"', path.read_text(encoding="utf-8")):
                out.add(prefix + lit)
    return out


def base_name(name):
    return re.sub(r"_(bucket|sum|count)$", "", name)


def check_metrics(c, docs, dashboard_rules):
    used = {}
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    for group in (docs.get(alerts) or [{}])[0].get("groups", []):
        for rule in group.get("rules", []):
            for n in metric_names(rule.get("expr", "")):
                used.setdefault(n, set()).add(rel(alerts))
    dash_path = DEPLOY / "grafana" / "dashboards" / "sealtrail.json"
    dash = (docs.get(dash_path) or [{}])[0]
    c.expect(dash.get("uid") == "sealtrail", rel(dash_path), "uid must be sealtrail")
    exprs = dashboard_exprs(c, dash, rel(dash_path))
    for e in exprs:
        for n in metric_names(e):
            used.setdefault(n, set()).add(rel(dash_path))
    if dashboard_rules:
        rules = [{"record": f"dashboard:query{i}", "expr": grafana_to_promql(e)}
                 for i, e in enumerate(exprs)]
        pathlib.Path(dashboard_rules).write_text(
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    defined = defined_metrics()
    for name, where in sorted(used.items()):
        if base_name(name) in defined:
            if base_name(name) in PENDING_METRICS:
                c.warn("deploy/check.py", f"{base_name(name)} is defined now: remove it from "
                       "PENDING_METRICS")
        elif base_name(name) in PENDING_METRICS:
            c.warn(", ".join(sorted(where)),
                   f"{name} is not defined yet ({PENDING_METRICS[base_name(name)]})")
        else:
            c.fail(", ".join(sorted(where)), f"{name} is not a metric the sources define")


# Metrics a running setup without errors, forwarding sinks or authentication does not show yet.
NOT_IN_A_QUIET_SETUP = {
    "sealtrail_errors_total": "appears with the first error",
}


def check_live_metrics(c, docs, files):
    """Every metric the alerts and the dashboard use is exported by the running services (the
    Prometheus text expositions in FILES), unless NOT_IN_A_QUIET_SETUP or PENDING explains it."""
    live = set()
    for f in files:
        for line in pathlib.Path(f).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                live.add(base_name(re.split(r"[{ ]", line, maxsplit=1)[0]))
    used = set()
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    for group in (docs.get(alerts) or [{}])[0].get("groups", []):
        for rule in group.get("rules", []):
            used |= metric_names(rule.get("expr", ""))
    dash = (docs.get(DEPLOY / "grafana" / "dashboards" / "sealtrail.json") or [{}])[0]
    for panel in dash.get("panels", []):
        for t in panel.get("targets") or []:
            used |= metric_names(t.get("expr", ""))
    for name in sorted({base_name(n) for n in used}):
        if name in live:
            continue
        why = NOT_IN_A_QUIET_SETUP.get(name) or PENDING_METRICS.get(name)
        if why:
            c.warn("live /metrics", f"{name} not exported ({why})")
        else:
            c.fail("live /metrics", f"{name} is used by alerts or dashboard but not exported")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-dashboard-rules", metavar="FILE",
                    help="write the dashboard's queries as recording rules to FILE")
    ap.add_argument("--compose-configs", metavar="DIR",
                    help="also check the configs deploy/compose/init.sh wrote to DIR")
    ap.add_argument("--live-metrics", metavar="FILE", nargs="+",
                    help="also check the metric names against these /metrics expositions")
    args = ap.parse_args()
    c = Checker()
    docs = parse_all(c)
    check_kubernetes(c, docs)
    check_compose(c, docs)
    check_dockerfile(c)
    check_metrics(c, docs, args.write_dashboard_rules)
    if args.compose_configs:
        check_compose_configs(c, args.compose_configs)
    if args.live_metrics:
        check_live_metrics(c, docs, args.live_metrics)
    for w in c.warnings:
        print(f"warning: {w}")
    for f in c.failures:
        print(f"FAILED: {f}")
    print(f"deploy/check.py: {len(docs)} files parsed, {len(c.failures)} failures, "
          f"{len(c.warnings)} warnings")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
